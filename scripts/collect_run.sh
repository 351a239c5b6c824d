#!/usr/bin/env bash
# collect_run.sh - copy a run directory's artifacts, not its checkpoints, to
# where they are committed: the JSON and JSONL files a report is built from,
# the figures, the found configurations and any README, with the directory
# tree kept. Checkpoints, adapters, lock files, caches and plot scratch stay
# behind (the report redraws its figures from the JSON).
#
#   usage: bash scripts/collect_run.sh [--max-mb=N] [--with-bank] [--dry-run] SRC DST
#     e.g. bash scripts/collect_run.sh runs/study reports/study-smollm2-default
#
# --with-bank also copies each finished LoRA bank (a file named
# adapters.safetensors; checkpoints still stay behind): what a stage that
# attacks or searches a bank needs to resume in a session that does not
# have the run directory. A retrained bank is another bank (quantized
# answers depend on the BLAS kernels), so a study that outlives its
# machine keeps its bank with its artifacts.
#
# Files already in DST that SRC lacks (a README written by hand) are kept; a
# file SRC has replaces DST's copy through a temporary file and a rename, so
# an interrupted copy leaves the old one whole. A file to collect above
# --max-mb (default 16) stops the copy before anything is written: a commit
# that large is a mistake to look at, not to make silently.
set -u
max_mb=16
dry=0
with_bank=0
args=()
for a in "$@"; do
    case "$a" in
        --max-mb=*) max_mb=${a#--max-mb=} ;;
        --dry-run) dry=1 ;;
        --with-bank) with_bank=1 ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "collect_run: unknown option $a (expected --max-mb=N, --with-bank, --dry-run)" >&2; exit 2 ;;
        *) args+=("$a") ;;
    esac
done
if [ ${#args[@]} -ne 2 ]; then
    echo "collect_run: expected SRC and DST (usage: bash scripts/collect_run.sh [--max-mb=N] [--with-bank] [--dry-run] SRC DST)" >&2
    exit 2
fi
case "$max_mb" in ''|*[!0-9]*) echo "collect_run: --max-mb=$max_mb: expected a whole number of MiB" >&2; exit 2 ;; esac
src=${args[0]%/}
dst=${args[1]%/}
if [ ! -d "$src" ]; then echo "collect_run: $src: not a directory" >&2; exit 1; fi
asrc=$(cd "$src" && pwd -P)
adst=$(realpath -m "$dst")
case "$adst/" in
    "$asrc/"*) echo "collect_run: $dst is inside $src: the copy would collect itself" >&2; exit 1 ;;
esac

# keep REL: 0 when the file at REL (relative to SRC) is an artifact, 1 with the reason on stdout otherwise
keep() {
    local rel=$1 base=${1##*/}
    case "/$rel" in
        */plot/*) echo "plot scratch"; return 1 ;;
    esac
    case "$base" in
        checkpoint|checkpoint.*|*.ckpt) echo "checkpoint"; return 1 ;;
        adapters.safetensors) [ "$with_bank" = 1 ] && return 0; echo "weights (a bank: --with-bank copies it)"; return 1 ;;
        *.safetensors|*.gguf|*.bin) echo "weights"; return 1 ;;
        lock|*.lock|*.tmp|*.tmp.*) echo "lock or temporary"; return 1 ;;
        *cache*.json) echo "cache"; return 1 ;;
        *.json|*.jsonl|*.png|*.pdf|*.svg|*.lua|*.md|*.txt|*.tsv|*.csv) return 0 ;;
    esac
    echo "not an artifact type"
    return 1
}

files=() skipped=0 bytes=0 big=()
while IFS= read -r -d '' f; do
    rel=${f#"$src"/}
    if why=$(keep "$rel"); then
        sz=$(stat -c %s "$f")
        if [ "$sz" -gt $((max_mb * 1048576)) ]; then big+=("$rel ($((sz / 1048576)) MiB)"); fi
        files+=("$rel")
        bytes=$((bytes + sz))
    else
        skipped=$((skipped + 1))
        [ "$dry" = 1 ] && echo "skip $rel ($why)"
    fi
done < <(find "$src" -type f -print0 | sort -z)

if [ ${#big[@]} -gt 0 ]; then
    printf 'collect_run: above --max-mb=%s, nothing copied:\n' "$max_mb" >&2
    for b in "${big[@]}"; do echo "  $src/$b" >&2; done
    exit 1
fi
if [ "$dry" = 0 ] && ! mkdir -p "$dst" 2>/dev/null; then echo "collect_run: $dst: cannot create the directory" >&2; exit 1; fi
for rel in "${files[@]}"; do
    if [ "$dry" = 1 ]; then echo "copy $rel"; continue; fi
    d=$(dirname "$dst/$rel")
    mkdir -p "$d" || { echo "collect_run: $d: cannot create the directory" >&2; exit 1; }
    tmp="$dst/$rel.collect-tmp.$$"
    if ! cp "$src/$rel" "$tmp" || ! mv -f "$tmp" "$dst/$rel"; then
        rm -f "$tmp"
        echo "collect_run: cannot write $dst/$rel (its previous copy, if any, is unchanged)" >&2
        exit 1
    fi
done
printf 'collect_run: %s %d files (%d KiB) from %s to %s; %d left behind (checkpoints, weights, caches, plot scratch)\n' \
    "$([ "$dry" = 1 ] && echo would copy || echo copied)" "${#files[@]}" $((bytes / 1024)) "$src" "$dst" "$skipped"
