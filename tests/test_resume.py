"""Exactly once: a run killed (SIGKILL) at any moment, rerun with resume, equals an uninterrupted run.
Also: overwrite never empties the old output first, and one writer per output (the lock)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from batchinfer.cli import main
from batchinfer.errors import LockedError, OutputError
from batchinfer.io.lock import OutputLock
from tests.test_cli import make_frame

EXE = str(Path(sys.executable).parent / "batchinfer")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_classifier):
    """Two Parquet files and a CSV (8 units of at most 100 rows), a job, and the output of a clean run."""
    root = tmp_path_factory.mktemp("resume")
    (root / "data").mkdir()
    make_frame(250, seed=1).write_parquet(root / "data" / "a.parquet")
    make_frame(250, seed=2, start=250).write_parquet(root / "data" / "b.parquet")
    make_frame(180, seed=3, start=500).write_csv(root / "data" / "c.csv")
    write_resume_job(root, tiny_classifier)
    result = CliRunner().invoke(main, ["run", str(root / "job.toml"), "--set", f"output.path={root / 'clean'}"])
    assert result.exit_code == 0, result.output
    return root


def write_resume_job(root: Path, model: Path) -> None:
    """A resumable job over data/*.parquet and data/c.csv in units of 100 rows."""
    (root / "job.toml").write_text(f"""
[input]
path = ["data/*.parquet", "data/c.csv"]
column = "text"
batch_rows = 100
[model]
name = {json.dumps(str(model))}
task = "text-classification"
[output]
path = "out"
mode = "resume"
""")


def read(out: Path) -> pl.DataFrame:
    return pl.read_parquet(str(out / "*.parquet"))


def assert_same_output(out: Path, clean: Path) -> None:
    got, want = read(out), read(clean)
    assert got["row_id"].n_unique() == got.height == 680
    assert got.equals(want), "rows or predictions differ from the uninterrupted run"
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in clean.iterdir())
    assert not list(out.rglob(".*tmp-*")) and not list(out.rglob("staging-*"))
    done = sorted(p.stem for p in (out / "_batchinfer" / "done").iterdir())
    assert done == sorted(p.stem for p in out.glob("part-*.parquet"))
    assert json.loads((out / "_SUCCESS").read_text())["rows"] == 680


def run_killed(workdir: Path, out: Path, fault: str, mode: str = "resume") -> None:
    env = {**os.environ, "BATCHINFER_FAULT": fault}
    proc = subprocess.run([EXE, "run", str(workdir / "job.toml"), "--set", f"output.path={out}",
                           "--set", f"output.mode={mode}", "-q"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, f"fault {fault} did not fire: {proc.returncode} {proc.stderr}"


# (fault point : hit number) -- reading, inference, part write, rename, manifest update, commit
FAULTS = ["read:1", "read:5", "infer:2", "infer:7", "before-part:3", "part-written-not-renamed:1",
          "part-written-not-renamed:6", "after-part:4", "after-manifest:1", "after-manifest:8", "before-commit:1"]


@pytest.mark.parametrize("fault", FAULTS)
def test_killed_run_resumes_to_the_same_output(workdir, tmp_path, fault):
    out = tmp_path / "out"
    run_killed(workdir, out, fault)
    assert not (out / "_SUCCESS").exists()
    result = CliRunner().invoke(main, ["run", str(workdir / "job.toml"), "--set", f"output.path={out}"])
    assert result.exit_code == 0, result.output
    assert_same_output(out, workdir / "clean")


@pytest.mark.parametrize("fault", ["infer:3", "staged-complete:1", "swap:3"])
def test_killed_overwrite_keeps_old_output_or_finishes_the_swap(workdir, tmp_path, fault):
    out = tmp_path / "out"
    shutil.copytree(workdir / "clean", out)
    (out / "part-00009-000000.parquet").write_bytes((out / "part-00000-000000.parquet").read_bytes())  # stale
    run_killed(workdir, out, fault, mode="overwrite")
    if fault == "infer:3":  # killed before the new output was complete: the old one is untouched
        assert (out / "_SUCCESS").exists() and (out / "part-00009-000000.parquet").exists()
    result = CliRunner().invoke(main, ["run", str(workdir / "job.toml"), "--set", f"output.path={out}",
                                       "--set", "output.mode=overwrite"])
    assert result.exit_code == 0, result.output
    assert_same_output(out, workdir / "clean")


def test_resume_of_a_complete_output_is_a_no_op(workdir, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(workdir / "clean", out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, ["run", str(workdir / "job.toml"), "--set", f"output.path={out}"])
    assert result.exit_code == 0 and "already complete" in result.output
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}


def test_resume_refuses_an_output_of_a_different_job(workdir, tmp_path):
    out = tmp_path / "out"
    run_killed(workdir, out, "after-manifest:2")
    result = CliRunner().invoke(main, ["run", str(workdir / "job.toml"), "--set", f"output.path={out}",
                                       "--set", "model.top_k=2"])
    assert result.exit_code == OutputError.exit_code
    assert "different job (changed: model)" in result.output


def test_error_mode_refuses_an_interrupted_output(workdir, tmp_path):
    out = tmp_path / "out"
    run_killed(workdir, out, "after-manifest:2")
    result = CliRunner().invoke(main, ["run", str(workdir / "job.toml"), "--set", f"output.path={out}",
                                       "--set", "output.mode=error"])
    assert result.exit_code == OutputError.exit_code and "mode = 'resume'" in result.output


def test_error_mode_does_not_call_a_run_of_changed_input_complete(workdir, tmp_path):
    """A complete output, then an input file changes (the kill campaign found this after a resume was
    interrupted before it began): error mode refuses the folder without calling it the complete run of this
    input, names the file, and changes nothing; a resume redoes that file's units."""
    root = tmp_path / "job"
    shutil.copytree(workdir / "data", root / "data")
    shutil.copyfile(workdir / "job.toml", root / "job.toml")
    assert CliRunner().invoke(main, ["run", str(root / "job.toml")]).exit_code == 0
    (root / "data" / "c.csv").write_text((workdir / "data" / "c.csv").read_text().replace("g1", "g9"))
    before = {p: p.stat().st_mtime_ns for p in (root / "out").rglob("*") if p.is_file()}
    for extra in ((), ("--if-complete", "skip")):
        result = CliRunner().invoke(main, ["run", str(root / "job.toml"), "--set", "output.mode=error", *extra])
        assert result.exit_code == OutputError.exit_code, result.output
        assert "complete run" not in result.output and "not of the input as it is now" in result.output
        assert "c.csv" in result.output and "mode = 'resume'" in result.output
    assert before == {p: p.stat().st_mtime_ns for p in (root / "out").rglob("*") if p.is_file()}
    result = CliRunner().invoke(main, ["run", str(root / "job.toml")])
    assert result.exit_code == 0, result.output
    assert read(root / "out").filter(pl.col("row_id") >= 500)["group"].str.contains("g1").sum() == 0


def test_a_held_lock_stops_a_second_writer(workdir, tmp_path):
    out = tmp_path / "out"
    (out / "_batchinfer").mkdir(parents=True)
    lock = OutputLock(out / "_batchinfer" / "lock", label=str(out))
    lock.acquire()
    try:
        result = CliRunner().invoke(main, ["run", str(workdir / "job.toml"), "--set", f"output.path={out}"])
        assert result.exit_code == LockedError.exit_code
        assert "being written by another run" in result.output and f"pid {os.getpid()}" in result.output
    finally:
        lock.release()
    assert not (out / "_batchinfer" / "lock").exists()


def test_two_runs_at_once_one_writes_the_other_exits_cleanly(workdir, tmp_path):
    out = tmp_path / "out"
    cmd = [EXE, "run", str(workdir / "job.toml"), "--set", f"output.path={out}", "-q"]
    release = tmp_path / "release"
    held = {**os.environ, "BATCHINFER_TEST_HOLD_UNTIL": str(release)}  # the first run waits for the test
    first = subprocess.Popen(cmd, env=held, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = out / "_batchinfer" / "lock"
    deadline = time.time() + 120
    while not lock.exists() and time.time() < deadline:
        time.sleep(0.1)
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    release.touch()
    first_out, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == LockedError.exit_code, second.stderr
    assert_same_output(out, workdir / "clean")


@pytest.mark.parametrize("holder", ["dead pid, this host", "old heartbeat, other host"])
def test_a_stale_lock_is_taken_over(workdir, tmp_path, holder):
    out = tmp_path / "out"
    (out / "_batchinfer").mkdir(parents=True)
    if holder.startswith("dead"):
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        body = {"host": socket.gethostname(), "pid": gone.pid, "start": None, "heartbeat": time.time()}
    else:
        body = {"host": "elsewhere", "pid": 1, "start": None, "heartbeat": time.time() - 3600}
    (out / "_batchinfer" / "lock").write_text(json.dumps(body))
    result = CliRunner().invoke(main, ["run", str(workdir / "job.toml"), "--set", f"output.path={out}"])
    assert result.exit_code == 0, result.output
    assert_same_output(out, workdir / "clean")


def test_a_fresh_lock_from_another_host_is_respected(workdir, tmp_path):
    out = tmp_path / "out"
    (out / "_batchinfer").mkdir(parents=True)
    (out / "_batchinfer" / "lock").write_text(json.dumps({"host": "elsewhere", "pid": 1, "heartbeat": time.time()}))
    result = CliRunner().invoke(main, ["run", str(workdir / "job.toml"), "--set", f"output.path={out}"])
    assert result.exit_code == LockedError.exit_code and "host elsewhere" in result.output
