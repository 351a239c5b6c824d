#!/usr/bin/env bash
# python.sh - print the reference Python, the one way every script finds it:
# $QRUN_REF_PYTHON if set, else the venv scripts/ref/setup_venv.sh makes
# (.venv-ref in the repo root). Exits 1 with a hint when there is none.
#   "$(scripts/ref/python.sh)" scripts/ref/make_model_fixtures.py
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
py="${QRUN_REF_PYTHON:-$root/.venv-ref/bin/python}"
if [ ! -x "$py" ] && ! command -v "$py" >/dev/null 2>&1; then
    echo "python.sh: no reference Python at $py (run scripts/ref/setup_venv.sh, or set QRUN_REF_PYTHON)" >&2
    exit 1
fi
echo "$py"
