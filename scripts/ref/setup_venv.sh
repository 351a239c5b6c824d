#!/usr/bin/env bash
# Create a Python venv with the reference tooling of requirements.txt.
#   scripts/ref/setup_venv.sh [VENV_DIR]     (default: .venv-ref in the repo root,
#                                             where scripts/ref/python.sh looks)
# Then: "$(scripts/ref/python.sh)" scripts/ref/make_model_fixtures.py (with
# another VENV_DIR: QRUN_REF_PYTHON=VENV_DIR/bin/python).
# Everything comes from PyPI, pip's default index, torch included (its plain
# wheel runs on CPU). pip's own settings (PIP_INDEX_URL, pip.conf) still apply.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/../../.venv-ref}"
py="${PYTHON:-python3}"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --upgrade pip
"$venv/bin/python" -m pip install -r "$here/requirements.txt"
"$venv/bin/python" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
echo "setup_venv: ready: $venv/bin/python"
