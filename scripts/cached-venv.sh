#!/usr/bin/env bash
# Make (once) a virtual environment holding REQS and print its path: cached-venv.sh NAME REQS [FOLDER].
# It lives under ~/.cache/batchinfer-ci/NAME-KEY, where KEY hashes REQS and the Python version, and is reused
# while both are unchanged; FOLDER, when given and not empty, is used instead. Progress goes to stderr.
set -euo pipefail
NAME=$1
REQS=$2
KEY=$(printf '%s\n' "$REQS" "$(python3 --version)" | sha256sum | cut -c1-12)
VENV=${3:-$HOME/.cache/batchinfer-ci/$NAME-$KEY}
if [ ! -x "$VENV/bin/python" ] || [ ! -f "$VENV/.complete" ]; then
    echo "$NAME: creating $VENV ($REQS; once, then reused)" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install -q $REQS >&2
    touch "$VENV/.complete"
fi
echo "$VENV"
