#!/usr/bin/env bash
# Make (once) and print the virtual environment in which the Airflow tests run `airflow dags test`:
# Apache Airflow plus this project. It lives under ~/.cache/batchinfer-ci and is reused while its
# requirements are unchanged; the project is reinstalled (editable) into it on every call.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(bash scripts/cached-venv.sh airflow 'apache-airflow==3.3.* torch==2.13.0' "${BATCHINFER_AIRFLOW_VENV:-}")
"$VENV/bin/python" -m pip install -q -e ".[sample]" >&2
echo "$VENV"
