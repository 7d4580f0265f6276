"""Two ways to run a batchinfer job from Airflow.

- `batchinfer_bash`: BashOperator running the CLI. Airflow fails the task on a non-zero exit code; the
  codes are stable (README), so `skip_on_exit_code` can turn "rows failed" (8) into a skipped task if you like.
- `batchinfer_python`: a TaskFlow task calling `batchinfer.run`, which returns the run summary (pushed to
  XCom) or raises with the message the CLI would print.

Both use output.mode=resume and skip a job that already completed, so a retry is always safe.
BATCHINFER_JOB and BATCHINFER_OUTPUT (environment) pick the job and its output; the defaults run the
repository's sample sentiment job.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task

JOB = os.environ.get("BATCHINFER_JOB", str(Path(__file__).resolve().parents[2] / "jobs" / "sentiment.toml"))
OUTPUT = os.environ.get("BATCHINFER_OUTPUT", "/tmp/batchinfer-airflow")
DEFAULTS = {"retries": 2}


@dag(dag_id="batchinfer_bash", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False,
     default_args=DEFAULTS, tags=["batchinfer"])
def batchinfer_bash():
    BashOperator(
        task_id="score_reviews",
        bash_command=(f"batchinfer run {JOB} --set output.path={OUTPUT}/bash --set output.mode=resume "
                      f"--if-complete skip --log-format json --summary-json {OUTPUT}/bash.summary.json"),
    )


@dag(dag_id="batchinfer_python", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False,
     default_args=DEFAULTS, tags=["batchinfer"])
def batchinfer_python():
    @task
    def score_reviews() -> dict:
        import batchinfer

        result = batchinfer.run(JOB, [f"output.path={OUTPUT}/python", "output.mode=resume"], if_complete="skip")
        return result.to_dict()  # XCom: rows, failures, timings, output path

    score_reviews()


batchinfer_bash()
batchinfer_python()
