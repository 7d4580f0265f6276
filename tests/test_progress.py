"""Progress a person and a scheduler can use: per-batch counts, bar and ETA, interval log lines, -v timings.

Driven by a fake clock or a tiny interval; nothing here checks wall time.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest

from batchinfer.engine import runner
from batchinfer.engine.progress import Progress, StageTimes
from tests.test_cli import invoke, job, make_frame


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bar_shows_rows_percent_rate_elapsed_and_eta():
    clock, out = Clock(), io.StringIO()
    bar = Progress(1000, enabled=True, stream=out, clock=clock)
    assert "0/1,000 rows" in out.getvalue()  # drawn at once, before the first batch
    clock.now += 10
    bar.update(250)
    line = out.getvalue().rsplit("\r", 1)[-1]
    assert "[######" in line and "250/1,000 rows" in line and "25.0%" in line
    assert "25 rows/s" in line and "elapsed 10s" in line and "ETA 30s" in line
    bar.close()
    assert out.getvalue().endswith("\n")


def test_resumed_rows_start_the_bar_but_not_the_rate():
    clock = Clock()
    bar = Progress(10_000, enabled=False, done_before=8_000, clock=clock, heartbeat=False)
    clock.now += 10
    bar.update(100)
    state = bar.state()
    assert state["rows"] == 8_100 and state["rows_this_run"] == 100 and state["percent"] == 81.0
    assert state["rows_per_second"] == 10.0 and state["eta_s"] == 190.0


def test_unknown_total_shows_rows_and_rate_without_bar():
    clock, out = Clock(), io.StringIO()
    bar = Progress(None, enabled=True, stream=out, clock=clock)
    clock.now += 2
    bar.update(50)
    line = out.getvalue().rsplit("\r", 1)[-1]
    assert "50 rows" in line and "25 rows/s" in line and "#" not in line and "ETA" not in line


def test_an_estimated_total_shows_as_approximate_until_exact():
    clock, out, guess = Clock(), io.StringIO(), [None]
    bar = Progress(None, enabled=True, stream=out, clock=clock, estimate=lambda: guess[0])
    clock.now += 2
    bar.update(50)
    assert "#" not in out.getvalue().rsplit("\r", 1)[-1]  # nothing read yet: no total
    guess[0] = (1000, False)
    clock.now += 2
    bar.update(50)
    line = out.getvalue().rsplit("\r", 1)[-1]
    assert "100/~1,000 rows" in line and "10.0%" in line and "ETA 36s" in line
    assert bar.state()["total_exact"] is False
    guess[0] = (60, False)  # an estimate never runs behind the rows done
    assert bar.state()["total"] == 100
    guess[0] = (1000, True)
    clock.now += 1
    bar.update(100)
    assert "200/1,000 rows" in out.getvalue().rsplit("\r", 1)[-1]


def _csv(path, rows: int, *, quoted_newlines: bool = False) -> None:
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i in range(rows):
            text = "word " * (1 + i % 17) + ("\nmore" if quoted_newlines and i % 5 == 0 else "")
            w.writerow([i, text])


@pytest.mark.parametrize("name", ["in.csv", "in.csv.gz"])
def test_csv_rows_are_estimated_from_bytes_read_and_exact_at_the_end(tmp_path, name):
    import gzip
    import shutil

    from batchinfer.io.source import Source
    from batchinfer.job import InputSpec

    _csv(tmp_path / "a.csv", 30_000)
    _csv(tmp_path / "b.csv", 10_000, quoted_newlines=True)
    for part in ("a", "b"):
        if name.endswith(".gz"):
            with open(tmp_path / f"{part}.csv", "rb") as src, gzip.open(tmp_path / f"{part}.{name}", "wb") as dst:
                shutil.copyfileobj(src, dst)
            (tmp_path / f"{part}.csv").unlink()
        else:
            (tmp_path / f"{part}.csv").rename(tmp_path / f"{part}.{name}")
    source = Source(InputSpec(path=str(tmp_path), column="text", batch_rows=4096))
    source.check("text", None)
    assert source.rows_estimate() is None  # nothing read yet
    seen = []
    for sb in source.batches(["id", "text"], "text"):
        seen.append((sb.file_index, source.rows_estimate()))
    assert {i for i, _ in seen} == {0, 1}
    for _, (rows, exact) in seen:  # while a is read, b (not opened yet) is guessed from a's lines per byte
        assert not exact and abs(rows - 40_000) <= 0.25 * 40_000
    assert source.rows_estimate() == (40_000, True)  # both read to the end: exact, quoted newlines and all


def test_without_a_terminal_a_line_is_logged_every_interval(caplog):
    clock = Clock()
    bar = Progress(600, enabled=False, interval=30, clock=clock, heartbeat=False)
    with caplog.at_level(logging.INFO, logger="batchinfer"):
        for _ in range(6):
            clock.now += 10
            bar.update(100)
        bar.close()
    lines = [r for r in caplog.records if r.getMessage().startswith("progress:")]
    assert len(lines) == 2  # at 30 s and 60 s
    fields = lines[0].fields
    assert fields["event"] == "progress" and fields["rows"] == 300 and fields["total"] == 600
    assert fields["rows_per_second"] == 10.0 and fields["eta_s"] == 30.0 and fields["elapsed_s"] == 30.0
    assert "300/600 rows (50.0%)" in lines[0].getMessage() and "ETA 30s" in lines[0].getMessage()


def test_stage_times_count_padding():
    import numpy as np

    stages = StageTimes()
    stages.count_batch({"attention_mask": np.array([[1, 1, 1, 0], [1, 0, 0, 0]])})
    stages.count_batch({"pixel_values": np.zeros((1, 3, 2, 2))})  # images: no tokens
    assert stages.to_dict()["padding_efficiency"] == 0.5
    assert stages.timed("infer", lambda x: x + 1)(1) == 2 and stages.seconds["infer"] >= 0


@pytest.fixture
def updates(monkeypatch):
    """Every Progress the runner makes, with the row counts it was given."""
    made = []

    class Recording(Progress):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.calls: list[int] = []
            self.states: list[dict] = []
            made.append(self)

        def update(self, rows: int) -> None:
            self.calls.append(rows)
            super().update(rows)
            self.states.append(self.state())

    monkeypatch.setattr(runner, "Progress", Recording)
    return made


def test_progress_moves_per_model_batch_not_per_unit(tmp_path, tiny_classifier, updates):
    make_frame(300).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet", extra="[batching]\nbatch_size = 32\n")
    assert invoke("run", str(path), "--no-progress").exit_code == 0
    (bar,) = updates
    assert bar.total == 300 and sum(bar.calls) == 300
    assert len(bar.calls) >= 300 // 32  # one unit of 300 rows, many batches
    assert max(bar.calls) <= 32


def test_a_resumed_run_starts_at_the_done_rows(tmp_path, tiny_classifier, updates, monkeypatch):
    from batchinfer.engine import units

    make_frame(300).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet", extra='mode = "resume"')
    path.write_text(path.read_text().replace("batch_rows = 1000", "batch_rows = 100"))
    real, calls = units.infer_unit, []

    def second_unit_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(units, "infer_unit", second_unit_fails)
    assert invoke("run", str(path), "--no-progress").exit_code == 1  # the first unit (100 rows) is committed
    monkeypatch.setattr(units, "infer_unit", real)
    updates.clear()
    result = invoke("run", str(path), "--no-progress")
    assert result.exit_code == 0, result.output
    (bar,) = updates
    assert bar.done_before == 100 and bar.rows == 200 and bar.state()["rows"] == 300
    assert sum(bar.calls) == 200  # the done unit is not counted into this run's rate


def test_a_csv_job_shows_a_bar_with_a_total(tmp_path, tiny_classifier, updates):
    _csv(tmp_path / "in.csv", 3000)
    path = job(tmp_path, tiny_classifier, input_path="in.csv", extra="[batching]\nbatch_size = 64\n")
    result = invoke("run", str(path), "--progress")
    assert result.exit_code == 0, result.output
    (bar,) = updates
    assert bar.total is None  # not known up front
    during = [state for state in bar.states if state["rows"] < 3000]
    assert during and all(state["total"] and abs(state["total"] - 3000) <= 300 for state in during)
    assert "[" + "#" * 24 + "] 3,000/3,000 rows" in result.stderr  # exact at the end


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_progress_lines_at_a_tiny_interval(tmp_path, tiny_classifier, fmt):
    make_frame(400).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet",
               extra="[batching]\nbatch_size = 8\n\n[runtime]\nprogress_interval = 0.001\n")
    result = invoke("run", str(path), "--no-progress", "--log-format", fmt)
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    if fmt == "text":
        assert any(line.startswith("batchinfer: loading model") for line in lines)
        progress = [line for line in lines if line.startswith("batchinfer: progress: ")]
        assert progress and "/400 rows (" in progress[-1] and "rows/s" in progress[-1]
        assert "elapsed" in progress[-1]
        loading = next(i for i, line in enumerate(lines) if "loading model" in line)
        assert loading < lines.index(progress[0])
    else:
        records = [json.loads(line) for line in lines]
        progress = [r for r in records if r.get("event") == "progress"]
        assert progress, lines
        for key in ("rows", "total", "percent", "rows_per_second", "elapsed_s", "eta_s", "time", "level"):
            assert key in progress[-1]
        assert progress[-1]["total"] == 400
        rows = [r["rows"] for r in progress]
        assert rows == sorted(rows) and all(0 <= r <= 400 for r in rows)


def test_verbose_shows_busy_seconds_per_stage_and_padding(tmp_path, tiny_classifier):
    make_frame(200).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    quiet = invoke("run", str(path), "--no-progress")
    assert "timings:" not in quiet.stderr
    result = invoke("run", str(path), "--no-progress", "-v", "--set", "output.mode=overwrite")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stderr.splitlines() if line.startswith("batchinfer: timings:"))
    for word in ("setup", "busy seconds per stage", "read", "tokenize", "infer", "write", "padding efficiency",
                 "job check", "first batch"):
        assert word in line
    assert "rows in" in result.stdout.splitlines()[-1]  # stdout still ends with the summary


def test_verbose_breaks_start_up_down(tmp_path, tiny_classifier):
    """A fresh process (the CLI as a scheduler runs it): imports, then each set-up phase, then the first batch."""
    make_frame(20).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    done = subprocess.run([sys.executable, "-m", "batchinfer.cli", "run", str(path), "--no-progress", "-v",
                           "--summary-json", str(tmp_path / "s.json")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stderr.splitlines() if line.startswith("batchinfer: timings:"))
    words = ["imports", "job file", "setup", "job check", "model resolve and hash", "tokenizer", "runtime session",
             "first batch", "total"]
    assert [line.index(w) for w in words] == sorted(line.index(w) for w in words), line  # in this order
    timings = json.loads((tmp_path / "s.json").read_text())["timings"]
    assert "gate_s" not in timings  # fp32: no agreement gate ran
    phases = sum(timings[k] for k in ("check_s", "resolve_s", "tokenizer_s", "session_s"))
    assert 0 < phases <= timings["setup"] + 0.01 and 0 < timings["imports_s"] < timings["total"] + 60


def test_json_summary_always_has_stage_timings(tmp_path, tiny_classifier):
    make_frame(200).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    result = invoke("run", str(path), "--log-format", "json", "--summary-json", str(tmp_path / "s.json"))
    assert result.exit_code == 0, result.output
    timings = json.loads((tmp_path / "s.json").read_text())["timings"]
    for key in ("setup", "read_s", "tokenize_s", "infer_s", "write_s", "total", "tokens", "padded_tokens",
                "check_s", "first_batch_s"):
        assert key in timings, timings
    assert 0 < timings["padding_efficiency"] <= 1 and timings["tokens"] <= timings["padded_tokens"]
