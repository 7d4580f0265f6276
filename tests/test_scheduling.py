"""Ready for schedulers: JSON logs and summaries, --if-complete skip, the cache commands, the cron wrapper
(two runs at once), and the Airflow DAGs run for real with `airflow dags test`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from batchinfer.cli import main
from batchinfer.errors import OutputError
from tests.test_cli import job, make_frame

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def cli(*args, env=None, timeout=300):
    return subprocess.run([str(BIN / "batchinfer"), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_json_logs_and_summary(tmp_path, tiny_classifier, monkeypatch):
    make_frame(120).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    path.write_text(path.read_text().replace("batch_rows = 1000", 'batch_rows = 50\n'
                                             'storage_options = { auto_mkdir = true, token = "${BI_TOKEN}" }'))
    proc = cli("run", str(path), "--log-format", "json", "--summary-json", str(tmp_path / "summary.json"),
               env={"BI_TOKEN": "very-secret-token-123"})
    assert proc.returncode == 0, proc.stderr
    logs = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert logs and all({"time", "level", "message"} <= set(entry) for entry in logs)
    assert "very-secret-token-123" not in proc.stderr + proc.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert json.loads(proc.stdout)["event"] == "summary"
    assert summary["status"] == "ok" and summary["rows_in"] == summary["rows_out"] == 120
    assert summary["units"] == 3 and summary["failed"] == 0 and summary["dead_letter"] is None
    assert summary["model_fingerprint"] and summary["versions"]["onnxruntime"]
    assert summary["rows_per_second"] > 0 and summary["timings"]["total"] > 0

    failed = cli("run", str(path), "--log-format", "json", "--summary-json", str(tmp_path / "failed.json"),
                 env={"BI_TOKEN": "very-secret-token-123"})
    assert failed.returncode == OutputError.exit_code
    error = json.loads(failed.stderr.strip().splitlines()[-1])
    assert error["exit_code"] == OutputError.exit_code and "already holds a complete run" in error["message"]
    assert json.loads((tmp_path / "failed.json").read_text())["status"] == "failed"


def test_if_complete_skip_makes_a_rerun_a_no_op(tmp_path, tiny_classifier):
    make_frame(30).write_parquet(tmp_path / "in.parquet")
    path = str(job(tmp_path, tiny_classifier, input_path="in.parquet"))
    assert CliRunner().invoke(main, ["run", path]).exit_code == 0
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*") if p.is_file()}
    again = CliRunner().invoke(main, ["run", path, "--if-complete", "skip"])
    assert again.exit_code == 0 and "already complete" in again.output
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*") if p.is_file()}
    changed = CliRunner().invoke(main, ["run", path, "--if-complete", "skip", "--set", "model.top_k=2"])
    assert changed.exit_code == OutputError.exit_code  # another job's output is not "complete" for this one


def test_export_warms_the_cache_and_cache_list_clear(tmp_path, tiny_encoder):
    cache = tmp_path / "cache"
    result = CliRunner().invoke(main, ["export", str(tiny_encoder), "--task", "feature-extraction",
                                       "--backend", "openvino", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    assert "ready for feature-extraction on openvino" in result.output
    listed = CliRunner().invoke(main, ["cache", "list", "--cache-dir", str(cache)])
    assert listed.exit_code == 0 and "onnx " in listed.output and "openvino " in listed.output
    assert "tokenizer " in listed.output  # the snapshot a run reads without transformers
    kinds = [line.split()[0] for line in listed.output.splitlines()[:-1]]
    assert f"{len(kinds)} entries" in listed.output and {"onnx", "openvino", "tokenizer"} <= set(kinds)
    cleared = CliRunner().invoke(main, ["cache", "clear", "--yes", "--cache-dir", str(cache)])
    assert cleared.exit_code == 0 and "removed" in cleared.output
    assert "0 entries" in CliRunner().invoke(main, ["cache", "list", "--cache-dir", str(cache)]).output


@pytest.mark.parametrize("wait", ["0", "300"])
def test_cron_wrapper_two_runs_at_once(tmp_path, tiny_classifier, wait):
    make_frame(400).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    path.write_text(path.read_text().replace("batch_rows = 1000", "batch_rows = 50"))
    wrapper = ROOT / "examples" / "cron" / "batchinfer-cron.sh"
    release = tmp_path / "release"
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "BATCHINFER_WAIT_FOR_LOCK": wait}
    held = {**env, "BATCHINFER_TEST_HOLD_UNTIL": str(release)}  # the first run holds the lock until released
    first = subprocess.Popen(["bash", str(wrapper), str(path), str(tmp_path / "logs")], env=held)
    lock = tmp_path / "out" / "_batchinfer" / "lock"
    deadline = time.time() + 120
    while not lock.exists() and time.time() < deadline:
        time.sleep(0.05)
    second = subprocess.Popen(["bash", str(wrapper), str(path), str(tmp_path / "logs")], env=env)
    log = tmp_path / "logs" / "job.log"
    deadline = time.time() + 120
    while time.time() < deadline and second.poll() is None and not (
            log.exists() and "waiting" in log.read_text()):
        time.sleep(0.05)
    release.touch()
    assert first.wait(timeout=300) == 0 and second.wait(timeout=300) == 0
    log = (tmp_path / "logs" / "job.log").read_text()
    if wait == "0":  # the second exits at once, cleanly, and says why
        assert '"event": "skipped"' in log
    else:  # the second waits for the first, then finds the job complete
        assert "waiting" in log and '"status": "already complete"' in log
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    assert out["row_id"].to_list() == list(range(400))


def airflow_env() -> Path:
    venv = os.environ.get("BATCHINFER_AIRFLOW_VENV")
    if not venv or not (Path(venv) / "bin" / "airflow").exists():
        if os.environ.get("CI"):
            pytest.fail("BATCHINFER_AIRFLOW_VENV is not set: CI runs the suite through scripts/test.sh")
        pytest.skip("Airflow runs in its own environment: use scripts/test.sh")
    return Path(venv)


@pytest.mark.slow
def test_airflow_dags_run_for_real(tmp_path):
    venv = airflow_env()
    env = {**os.environ, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "AIRFLOW_HOME": str(tmp_path / "airflow"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "examples" / "airflow"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}",
           "BATCHINFER_OUTPUT": str(tmp_path / "out")}
    env.pop("VIRTUAL_ENV", None)
    airflow = str(venv / "bin" / "airflow")
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    for dag_id, folder in (("batchinfer_python", "python"), ("batchinfer_bash", "bash")):
        proc = subprocess.run([airflow, "dags", "test", dag_id, "2026-11-26"], env=env, capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        out = pl.read_parquet(str(tmp_path / "out" / folder / "*.parquet"))
        assert out.height == 296 and set(out["label"]) == {"POSITIVE", "NEGATIVE"}
        assert "success" in (proc.stdout + proc.stderr).lower()
    summary = json.loads((tmp_path / "out" / "bash.summary.json").read_text())
    assert summary["rows_out"] == 296 and summary["exit_code"] == 0
