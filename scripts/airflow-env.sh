#!/usr/bin/env bash
# Make (once) and print the virtual environment in which the Airflow tests run `airflow dags test`:
# Apache Airflow plus this project. It lives under ~/.cache/batchinfer-ci and is reused while its
# requirements are unchanged; the project is reinstalled (editable) into it on every call.
set -euo pipefail
cd "$(dirname "$0")/.."
REQS='apache-airflow==3.3.* torch==2.13.0'
KEY=$(printf '%s\n' "$REQS" "$(python3 --version)" | sha256sum | cut -c1-12)
VENV=${BATCHINFER_AIRFLOW_VENV:-$HOME/.cache/batchinfer-ci/airflow-$KEY}
if [ ! -x "$VENV/bin/airflow" ] || [ ! -f "$VENV/.complete" ]; then
    echo "airflow-env: creating $VENV" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install -q $REQS >&2
    touch "$VENV/.complete"
fi
"$VENV/bin/python" -m pip install -q -e ".[sample]" >&2
echo "$VENV"
