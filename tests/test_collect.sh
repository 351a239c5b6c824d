#!/usr/bin/env bash
# test_collect.sh - scripts/collect_run.sh copies a run's artifacts and
# leaves its checkpoints, weights, locks, caches and plot scratch behind;
# keeps what DST already has; refuses a file above --max-mb before writing
# anything; refuses bad arguments with a message.
#   usage: bash tests/test_collect.sh /path/to/qrun   (from the repo root)
. "$(dirname "$0")/harness.sh" "$@"
C=scripts/collect_run.sh
S=$T/run
mkdir -p "$S/sp" "$S/search/configs" "$S/search/plot" "$S/rpi"
echo '{"a":1}' >"$S/study.json"
echo '{"f1":1}' >"$S/sp/results.json"
echo '{"step":1}' >"$S/sp/train.jsonl"
printf 'CKPT' >"$S/sp/checkpoint"
printf 'W' >"$S/sp/adapters.safetensors"
: >"$S/sp/lock"
echo 'return {}' >"$S/search/configs/ilp-0.5.lua"
echo '{}' >"$S/search/proxy-cache.json"
echo '1 2' >"$S/search/plot/points.dat"
printf 'PNG' >"$S/search/heatmap.png"
echo '{"q":1}' >"$S/rpi/adv-typo-fp.jsonl"

D=$T/dst
mkdir -p "$D/sp"
echo 'hand-written' >"$D/README.md"
echo '{"f1":0}' >"$D/sp/results.json"
run bash $C "$S" "$D"
expect_rc collect-1.1 0
expect_in collect-1.2 "$out" "copied 6 files"
missing=""
for f in study.json sp/results.json sp/train.jsonl search/configs/ilp-0.5.lua search/heatmap.png rpi/adv-typo-fp.jsonl; do
    cmp -s "$S/$f" "$D/$f" || missing="$missing $f"
done
if [ -z "$missing" ]; then ok collect-1.3; else fail collect-1.3 "not copied (or different):$missing"; fi
left=""
for f in sp/checkpoint sp/adapters.safetensors sp/lock search/proxy-cache.json search/plot/points.dat; do
    [ -e "$D/$f" ] && left="$left $f"
done
if [ -z "$left" ]; then ok collect-1.4; else fail collect-1.4 "copied, should stay behind:$left"; fi
if [ "$(cat "$D/README.md")" = hand-written ]; then ok collect-1.5; else fail collect-1.5 "DST's own README changed"; fi
if ls "$D"/sp/*collect-tmp* >/dev/null 2>&1; then fail collect-1.6 "a temporary file is left"; else ok collect-1.6; fi

# a file above the limit: refused by name, nothing written
head -c 2200000 /dev/zero >"$S/rpi/results.json"
D2=$T/dst2
run bash $C --max-mb=2 "$S" "$D2"
expect_fail collect-2.1
expect_in collect-2.2 "$err" "rpi/results.json (2 MiB)"
if [ -z "$(find "$D2" -type f 2>/dev/null)" ]; then ok collect-2.3; else fail collect-2.3 "files written before the refusal"; fi

# --with-bank: the finished bank comes too, checkpoints still stay behind
D3=$T/dst3
run bash $C --with-bank "$S" "$D3"
expect_rc collect-4.1 0
if cmp -s "$S/sp/adapters.safetensors" "$D3/sp/adapters.safetensors"; then ok collect-4.2; else fail collect-4.2 "the bank was not copied"; fi
if [ -e "$D3/sp/checkpoint" ]; then fail collect-4.3 "a checkpoint was copied with --with-bank"; else ok collect-4.3; fi

# bad arguments
run bash $C "$S"
expect_fail collect-3.1
expect_in collect-3.2 "$err" "expected SRC and DST"
run bash $C "$T/nope" "$D"
expect_fail collect-3.3
expect_in collect-3.4 "$err" "$T/nope: not a directory"
run bash $C "$S" "$S/inside"
expect_fail collect-3.5
expect_in collect-3.6 "$err" "is inside"
if [ -e "$S/inside" ]; then fail collect-3.9 "the refused DST was created"; else ok collect-3.9; fi
run bash $C --max-mb=lots "$S" "$D"
expect_fail collect-3.7
expect_in collect-3.8 "$err" "expected a whole number of MiB"
finish
