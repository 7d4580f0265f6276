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
# Azurite (Azure Blob emulator, from npm) for the storage tests; moto's S3 server comes with the test extra.
AZ_DIR=${BATCHINFER_AZURITE_DIR:-$HOME/.cache/batchinfer-ci/azurite}
if [ ! -x "$AZ_DIR/node_modules/.bin/azurite-blob" ]; then
    mkdir -p "$AZ_DIR"
    (cd "$AZ_DIR" && npm init -y >/dev/null && npm install --no-audit --no-fund --loglevel=error "azurite@3")
fi
export BATCHINFER_AZURITE="$AZ_DIR/node_modules/.bin/azurite-blob"
# transformers 4.57, in its own environment: the question-answering tests' reference (transformers 5 has none).
BATCHINFER_TRANSFORMERS4_VENV=$(bash scripts/transformers4-env.sh)
export BATCHINFER_TRANSFORMERS4_VENV
# Apache Airflow, in its own environment, for the DAG tests (tests/test_scheduling.py).
BATCHINFER_AIRFLOW_VENV=$(bash scripts/airflow-env.sh)
export BATCHINFER_AIRFLOW_VENV
REPORTS=$(mktemp -d)
status=0
python -m pytest --junitxml="$REPORTS/main.xml" "$@" || status=$?
# The IPEX tests need torch 2.8 and their own environment (kept under ~/.cache, reused).
bash scripts/test-ipex.sh --junitxml="$REPORTS/ipex.xml" "$@" || status=$?
python - "$REPORTS"/*.xml <<'PY'
import sys
import xml.etree.ElementTree as ET

total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for path in sys.argv[1:]:
    root = ET.parse(path).getroot()
    for suite in (root.iter("testsuite")):
        for key in total:
            total[key] += int(suite.get(key, 0))
passed = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
print(f"total: {passed} passed, {total['failures'] + total['errors']} failed, {total['skipped']} skipped")
PY
exit $status
