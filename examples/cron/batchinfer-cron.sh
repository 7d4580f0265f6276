#!/usr/bin/env bash
# Run a batchinfer job from cron: resumable, idempotent, never two at once on the same output.
#
#   batchinfer-cron.sh JOB.toml [LOG_DIR]
#
# - output.mode=resume: a run killed last night is finished, not redone; --if-complete skip makes a rerun of
#   a finished job a no-op (exit 0).
# - The output's lock stops overlapping runs. By default a second run exits at once and cleanly (exit 0, a
#   line in the log); BATCHINFER_WAIT_FOR_LOCK=SECONDS makes it wait for the first one instead.
# - Logs are JSON lines in LOG_DIR/NAME.log; the last run's summary is LOG_DIR/NAME.summary.json.
# - cron runs with a bare PATH (/usr/bin:/bin), which does not hold a virtual environment's batchinfer: set
#   BATCHINFER=/path/to/venv/bin/batchinfer (or PATH, in the crontab). Without either, the wrapper tries the
#   repository's own .venv (../../.venv/bin/batchinfer from here), then says what is missing and exits 127.
# Exit codes are batchinfer's (README), except 7 (locked), which is a clean exit here.
set -uo pipefail
job=${1:?usage: batchinfer-cron.sh JOB.toml [LOG_DIR]}
log_dir=${2:-${BATCHINFER_LOG_DIR:-$HOME/.local/state/batchinfer}}
name=$(basename "$job" .toml)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
batchinfer=${BATCHINFER:-$(command -v batchinfer || true)}
if [ -z "$batchinfer" ] && [ -x "$here/../../.venv/bin/batchinfer" ]; then
    batchinfer=$here/../../.venv/bin/batchinfer
fi
if [ -z "$batchinfer" ] || [ ! -x "$batchinfer" ]; then
    echo "batchinfer-cron.sh: no batchinfer command (PATH is $PATH): set BATCHINFER=/path/to/venv/bin/batchinfer," \
         "or PATH=/path/to/venv/bin:/usr/bin:/bin at the top of the crontab" >&2
    exit 127
fi
mkdir -p "$log_dir"
"$batchinfer" run "$job" --set output.mode=resume --if-complete skip \
    --wait-for-lock "${BATCHINFER_WAIT_FOR_LOCK:-0}" \
    --log-format json --summary-json "$log_dir/$name.summary.json" \
    >>"$log_dir/$name.log" 2>&1
code=$?
if [ "$code" -eq 7 ]; then
    printf '{"event": "skipped", "reason": "another run holds the output lock", "job": "%s"}\n' "$job" \
        >>"$log_dir/$name.log"
    exit 0
fi
exit "$code"
