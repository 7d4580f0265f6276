"""A user's bad day: changed inputs, messy multi-file inputs, outputs in odd places, signals, plain mistakes.
None of them may lose a row, leave an output polars or pyarrow cannot read, or exit with a code that lies."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from batchinfer.cli import main
from batchinfer.errors import InputError, JobFileError, OutputError
from tests.test_cli import make_frame

EXE = str(Path(sys.executable).parent / "batchinfer")


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def write_job(root: Path, model: Path, *, paths, output="out", mode="resume", extra="") -> Path:
    (root / "job.toml").write_text(f"""
[input]
path = {json.dumps(paths)}
column = "text"
batch_rows = 40
{extra}
[model]
name = {json.dumps(str(model))}
task = "text-classification"
[output]
path = {json.dumps(output)}
mode = "{mode}"
""")
    return root / "job.toml"


def read_both(out: Path) -> pl.DataFrame:
    """The output as polars reads its parts, after checking pyarrow reads the folder as one dataset too."""
    table = ds.dataset(str(out), format="parquet", exclude_invalid_files=False,
                       ignore_prefixes=["_", "."]).to_table()
    frame = pl.read_parquet(str(out / "*.parquet"))
    assert table.num_rows == frame.height
    return frame


def test_a_changed_file_killed_mid_resume_is_never_called_complete(tmp_path, tiny_classifier):
    """Defect 1: the changed file's units are uncommitted and the plan rewritten; killed right then, the
    folder kept _SUCCESS and the next resume said "already complete" over missing rows."""
    (tmp_path / "data").mkdir()
    make_frame(120, seed=1).write_csv(tmp_path / "data" / "a.csv")
    make_frame(90, seed=2, start=120).write_csv(tmp_path / "data" / "b.csv")
    job = write_job(tmp_path, tiny_classifier, paths="data/*.csv")
    assert cli("run", str(job)).exit_code == 0
    make_frame(130, seed=3, start=120).write_csv(tmp_path / "data" / "b.csv")  # the user fixes a file
    killed = subprocess.run([EXE, "run", str(job), "-q"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "BATCHINFER_FAULT": "after-plan:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    out = tmp_path / "out"
    assert not (out / "_SUCCESS").exists()
    refused = cli("run", str(job), "--set", "output.mode=error")
    assert refused.exit_code == OutputError.exit_code and "interrupted" in refused.output
    result = cli("run", str(job), "--if-complete", "skip")  # a scheduler's retry
    assert result.exit_code == 0 and "already complete" not in result.output, result.output
    got = read_both(out)
    assert got["row_id"].to_list() == list(range(250))
    assert json.loads((out / "_SUCCESS").read_text())["rows"] == 250
    assert cli("run", str(job)).output.count("already complete") == 1


def test_files_with_different_inferred_types_give_one_schema(tmp_path, tiny_classifier):
    """Defect 2: an all-empty CSV column (null) sorting first, CSV int64 beside Parquet int32, a column of
    digits in one CSV and words in another: the output has one schema that polars and pyarrow both read."""
    (tmp_path / "data").mkdir()
    frames = [make_frame(50, seed=i, start=50 * i) for i in range(4)]
    sparse = [[None] * 50, [None] * 49 + ["note"], [None] * 50, ["x"] * 50]
    codes = [[str(i) for i in range(50)], ["A1"] * 50, [str(i) for i in range(50)], [str(i) for i in range(50)]]
    for i, (frame, notes, code) in enumerate(zip(frames, sparse, codes)):
        frame = frame.with_columns(pl.Series("note", notes, pl.String), pl.Series("code", code))
        if i == 3:
            frame.with_columns(pl.col("row_id").cast(pl.Int32)).write_parquet(tmp_path / "data" / "d.parquet")
        else:
            frame.write_csv(tmp_path / "data" / f"{'abc'[i]}.csv")
    job = write_job(tmp_path, tiny_classifier, paths="data/*", mode="error")
    result = cli("run", str(job))
    assert result.exit_code == 0, result.output
    schemas = {str(pq.read_schema(p)) for p in (tmp_path / "out").glob("part-*.parquet")}
    assert len(schemas) == 1, schemas
    got = read_both(tmp_path / "out")
    assert got["row_id"].dtype == pl.Int64 and got["row_id"].to_list() == list(range(200))
    assert got["note"].dtype == pl.String and got["note"].to_list()[99] == "note"
    assert got["code"].to_list()[:3] == ["0", "1", "2"] and got["code"].to_list()[50] == "A1"


def test_types_that_cannot_widen_are_an_input_error_naming_the_files(tmp_path, tiny_classifier):
    (tmp_path / "data").mkdir()
    make_frame(20).write_parquet(tmp_path / "data" / "a.parquet")
    make_frame(20).with_columns(pl.col("value").cast(pl.String) + "kg").write_parquet(tmp_path / "data" / "b.parquet")
    result = cli("run", str(write_job(tmp_path, tiny_classifier, paths="data/*.parquet")))
    assert result.exit_code == InputError.exit_code, result.output
    assert "'value'" in result.output and "a.parquet: double" in result.output and "b.parquet" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("output, paths", [("data", "data"), ("data/out", "data"), ("data/x/out", "data/**/*.parquet")])
def test_an_output_where_the_input_reads_is_refused(tmp_path, tiny_classifier, output, paths):
    """Defect 3: an output inside the input folder or glob is read back by every rerun (3 -> 6 -> 9 rows)."""
    (tmp_path / "data").mkdir()
    make_frame(30).write_parquet(tmp_path / "data" / "a.parquet")
    result = cli("run", str(write_job(tmp_path, tiny_classifier, paths=paths, output=output)))
    assert result.exit_code == JobFileError.exit_code, result.output
    assert f"output.path {tmp_path / output}" in result.output and repr(str(tmp_path / paths)) in result.output
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["a.parquet"]


def test_own_outputs_and_files_matched_twice_are_read_once(tmp_path, tiny_classifier):
    """Defect 3: an earlier output used as input is read without its _dead_letter/ and _batchinfer/ files,
    and a file that two patterns match (or listed twice) is read once."""
    (tmp_path / "data").mkdir()
    bad = make_frame(60).with_columns(pl.when(pl.col("row_id") == 7).then(pl.lit(b"\xff")).otherwise(
        pl.col("text").cast(pl.Binary)).alias("text"))
    bad.write_parquet(tmp_path / "data" / "a.parquet")
    first = write_job(tmp_path, tiny_classifier, paths="data", output="scored",
                      extra='on_error = "dead-letter"')
    assert cli("run", str(first)).exit_code == 8
    assert list((tmp_path / "scored" / "_dead_letter").glob("*.parquet"))
    again = write_job(tmp_path, tiny_classifier, paths=["scored", "scored/*.parquet"], output="rescored",
                      extra="[output.columns]\nlabel = 'label2'\nscore = 'score2'")
    result = cli("run", str(again))
    assert result.exit_code == 0, result.output
    assert read_both(tmp_path / "rescored")["row_id"].to_list() == [i for i in range(60) if i != 7]
