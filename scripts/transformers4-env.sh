#!/usr/bin/env bash
# Make (once) and print the virtual environment holding transformers 4.57, the last release with the
# question-answering pipeline (transformers 5 removed it): the reference the question-answering tests compare
# batchinfer with. It lives under ~/.cache/batchinfer-ci and is reused while its requirements are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/cached-venv.sh transformers4 'transformers==4.57.* torch==2.13.0 pillow' "${BATCHINFER_TRANSFORMERS4_VENV:-}"
