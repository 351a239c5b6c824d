#!/usr/bin/env bash
# Create a Python venv with the reference tooling of requirements.txt.
#   scripts/ref/setup_venv.sh [VENV_DIR]     (default: .venv-ref in the repo root)
# Then: VENV_DIR/bin/python scripts/ref/make_model_fixtures.py
# torch comes from PyTorch's CPU wheel index (no CUDA download); set
# TORCH_INDEX_URL to use another one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/../../.venv-ref}"
py="${PYTHON:-python3}"
index="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --upgrade pip
torch_pin=$(grep -E '^torch==' "$here/requirements.txt")
"$venv/bin/python" -m pip install "$torch_pin" --index-url "$index"
"$venv/bin/python" -m pip install -r "$here/requirements.txt"
"$venv/bin/python" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
echo "setup_venv: ready: $venv/bin/python"
