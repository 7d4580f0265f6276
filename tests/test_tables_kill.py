"""The SIGKILL campaign for each table output (Delta, Iceberg, Lance, partitioned Parquet): `batchinfer run`
killed at ten or eleven moments in a row, from reading the first batches to just after the table's commit, each kill a
new process going on from what the last one left, then one run to the end.

After every kill the table holds either nothing of the run or all of it, once (a run is one commit); at the
end it holds exactly the rows of a clean run, once, with the clean run's predictions, and no staged part is
left. Kills are SIGKILL at named fault points (batchinfer/faults.py) and SIGTERM / SIGINT once more units are
committed to the staging folder (watched from outside), so the moments do not depend on timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest

import batchinfer
from tests.test_tables import commits, frame, output_of, read_output

EXE = str(Path(sys.executable).parent / "batchinfer")
BATCH_ROWS = 20  # 2 files of 300 rows: 30 units, enough that every unit-phase moment finds units left
# tests/test_kill_campaign.py kills the unit phase of a Parquet folder at random; here its named moments
UNIT_MOMENTS = ["after-dead-letter:1", "read:3", "after-part:2", "part-written-not-renamed:2", "after-manifest:2",
                ("units", 2, signal.SIGTERM), ("units", 2, signal.SIGINT)]
COMMIT_MOMENTS = {"delta": ["before-table-commit:1", "after-table-commit:1", "staged-parts-deleted:1"],
                  "lance": ["before-table-commit:1", "after-table-commit:1", "staged-parts-deleted:1"],
                  "iceberg": ["before-table-commit:1", "table-file-copied:2", "after-table-commit:1",
                              "staged-parts-deleted:1"],
                  "parquet-partitioned": ["before-table-commit:1", "partitions-written:1", "after-table-commit:1",
                                          "staged-parts-deleted:1"]}


def toml_value(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_job(root: Path, model: Path, output: dict) -> Path:
    sections = {"input": {"path": str(root / "data"), "column": "text", "batch_rows": BATCH_ROWS,
                          "on_error": "dead-letter", "null_text": "error"},
                "model": {"name": str(model), "task": "text-classification"}, "output": output}
    text = "\n".join(f"[{name}]\n" + "\n".join(f"{k} = {toml_value(v)}" for k, v in body.items())
                     for name, body in sections.items())
    (root / "job.toml").write_text(text + "\n")
    return root / "job.toml"


def write_inputs(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    first = frame(0, 300, seed=5).with_columns(pl.when(pl.col("id") % 97 == 13).then(None).otherwise(
        pl.col("text")).alias("text"))  # three null texts: dead letters (input.null_text = "error")
    first.write_parquet(folder / "a.parquet")
    frame(1000, 300, seed=6).write_parquet(folder / "b.parquet")


def staged_units(root: Path) -> int:
    return sum(1 for _ in root.rglob("runs/*/_batchinfer/done/*.json"))


def run(job: Path, env: dict, moment) -> tuple[int, str]:
    """One `batchinfer run`, stopped at `moment` (a fault point, or ("units", k, signal)); (rc, stderr)."""
    env = dict(env)
    if isinstance(moment, str):
        env["BATCHINFER_FAULT"] = moment
        proc = subprocess.run([EXE, "run", str(job), "-q"], env=env,
                              capture_output=True, text=True, timeout=300)
        return proc.returncode, proc.stderr
    _, more, sig = moment
    root = job.parent
    before = staged_units(root)
    proc = subprocess.Popen([EXE, "run", str(job), "-q"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if staged_units(root) >= before + more:
            proc.send_signal(sig)
            break
        time.sleep(0.002)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.fixture(scope="module")
def cli_env(session_cache) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHINFER_")}
    return {**env, "BATCHINFER_CACHE": str(session_cache)}


def campaign(root: Path, model: Path, env: dict, fmt: str) -> str | None:
    """Kill a run of `fmt` at each moment in turn, then run it to the end; what went wrong, or None."""
    clean_root, killed = root / "clean", root / "killed"
    want = read_output(output_of(fmt, clean_root, mode="append"))
    output = output_of(fmt, killed, mode="append")
    job = write_job(killed, model, output)
    history = []
    for moment in [*UNIT_MOMENTS, *COMMIT_MOMENTS[fmt]]:
        rc, err = run(job, env, moment)
        history.append(f"{moment}: rc {rc}")
        if rc in (0, 8):
            return f"the run was not stopped at {moment} ({history}): {err[-400:]}"
        if "Traceback" in err:
            return f"{history}: {err[-800:]}"
        made = _commits(output)
        if made:  # a commit holds the whole run, once
            got = read_output(output)
            if made != 1 or got["id"].to_list() != want["id"].to_list():
                return f"after {moment}: {made} commit(s), {got.height} rows, want 1 and {want.height} ({history})"
        elif moment in COMMIT_MOMENTS[fmt][-2:]:
            return f"killed after the commit, but no commit ({history})"
    rc, err = run(job, env, moment="")
    if rc != 8:
        return f"{history}: the last run exited {rc}: {err[-600:]}"
    if _commits(output) != 1 or not read_output(output).equals(want):
        return f"{history}: the table differs from the clean run ({_commits(output)} commits)"
    if list(killed.rglob("runs/*/part-*.parquet")):
        return "staged parts left after the commit"
    dead = sorted(i for p in killed.rglob("runs/*/_dead_letter/*.parquet") for i in pl.read_parquet(p)["id"])
    return None if dead == [13, 110, 207] else f"dead letters hold ids {dead}, not the three null texts"


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory, tiny_classifier, cli_env) -> dict[str, str | None]:
    """Every format's campaign, two at a time (each is a chain of processes: 2 cores run two chains); the
    clean runs first, one after another, in this process."""
    roots = {}
    for fmt in COMMIT_MOMENTS:
        roots[fmt] = root = tmp_path_factory.mktemp(f"kill-{fmt}")
        for where in (root / "clean", root / "killed"):
            write_inputs(where / "data")
        result = batchinfer.run(write_job(root / "clean", tiny_classifier, output_of(fmt, root / "clean",
                                                                                    mode="append")))
        assert (result.rows, result.failed) == (597, 3)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {fmt: pool.submit(campaign, roots[fmt], tiny_classifier, cli_env, fmt) for fmt in COMMIT_MOMENTS}
        return {fmt: future.result() for fmt, future in futures.items()}


@pytest.mark.parametrize("fmt", list(COMMIT_MOMENTS))
def test_killed_ten_times_then_resumed_the_table_holds_the_run_once(campaigns, fmt):
    """After each kill the table holds none or all of the run; at the end exactly the clean run's rows and
    predictions, once, with its dead letters, and no staged part."""
    assert campaigns[fmt] is None, campaigns[fmt]


def _commits(output: dict) -> int:
    try:
        return commits(output)
    except Exception:  # noqa: BLE001 - no table yet
        return 0


@pytest.mark.parametrize("killed_at", ["after-manifest:3", "after-table-commit:1"])
def test_an_attempt_whose_input_changed_is_dropped_or_finished(tmp_path, tiny_classifier, cli_env, killed_at):
    """Killed, then the input changed (a new run): an attempt that never committed is deleted with its staged
    units; one the table holds (killed after the commit) is finished as committed. Nothing is left open."""
    write_inputs(tmp_path / "data")
    output = output_of("delta", tmp_path, mode="append")
    job = write_job(tmp_path, tiny_classifier, output)
    rc, _ = run(job, cli_env, killed_at)
    assert rc == -9
    frame(5000, 40, seed=9).write_parquet(tmp_path / "data" / "b.parquet")  # b.parquet replaced: a new plan
    rc, err = run(job, cli_env, moment="")
    assert rc == 8, err
    ids = read_output(output)["id"].to_list()
    first = sorted([*range(300), *range(1000, 1300)])
    second = sorted([*range(300), *range(5000, 5040)])
    expected = sorted(first + second) if killed_at == "after-table-commit:1" else second
    assert sorted(ids) == [i for i in expected if i not in (13, 110, 207)]  # the null texts: dead letters
    runs = sorted(p.name for p in (tmp_path / "table" / "_batchinfer" / "runs").iterdir())
    assert len(runs) == (2 if killed_at == "after-table-commit:1" else 1)
    assert all((tmp_path / "table" / "_batchinfer" / "runs" / r / "_SUCCESS").exists() for r in runs)
    assert list((tmp_path / "table" / "_batchinfer" / "open").iterdir()) == []
    assert list(tmp_path.rglob("runs/*/part-*.parquet")) == []
