#!/usr/bin/env bash
# Install everything the tests need and run the whole suite. CI (.ci/run) runs exactly this.
# Outside a virtual environment it makes one in .venv first. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${VIRTUAL_ENV:-}" ]; then
    python3 -m venv .venv
    . .venv/bin/activate
fi
python -m pip install -q --upgrade pip
# torch==2.13.0 is the CPU wheel; an unpinned torch can pull a multi-GB CUDA build.
python -m pip install -q "torch==2.13.0" -e ".[test]"
python -m pytest "$@"
# The IPEX tests need torch 2.8 and their own environment (kept under ~/.cache, reused).
bash scripts/test-ipex.sh "$@"
