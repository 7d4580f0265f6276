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


def write_job(root: Path, model: Path, *, paths, output="out", mode="resume", extra="", batch_rows=40) -> Path:
    """A text-classification job over `paths` (relative to `root`) into `output`."""
    (root / "job.toml").write_text(f"""
[input]
path = {json.dumps(paths)}
column = "text"
batch_rows = {batch_rows}
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


def _abort_cases(root: Path) -> dict[str, tuple[Path, int]]:
    """Checks that fail on CSV inputs, each with its documented exit code."""
    import gzip

    cases = {"zero-byte": b"", "header only, no newline": b"text", "semicolons": b"a;text\n1;fine\n",
             "prediction column clash": b"label,text\npositive,fine\n",
             "gzip named .csv": gzip.compress(b"id,text\n1,fine\n")}
    out = {}
    for i, (name, data) in enumerate(cases.items()):
        (root / f"{i}.csv").write_bytes(data)
        out[name] = (root / f"{i}.csv", JobFileError.exit_code if "clash" in name else InputError.exit_code)
    make_frame(10).write_parquet(root / "p.parquet")
    (root / "parquet.csv").write_bytes((root / "p.parquet").read_bytes())
    out["Parquet named .csv"] = (root / "parquet.csv", InputError.exit_code)
    return out


def test_failing_checks_on_csv_always_exit_with_their_code(tmp_path, tiny_classifier):
    """Defect 4: the right message, then sometimes `terminate called without an active exception` (134):
    Arrow's threads released Python buffers while the interpreter exited. 50 runs per case, four at a time."""
    from concurrent.futures import ThreadPoolExecutor

    job = write_job(tmp_path, tiny_classifier, paths="x.csv", mode="error")
    cases = _abort_cases(tmp_path)

    def once(case: tuple[Path, int]) -> tuple[int, str]:
        proc = subprocess.run([EXE, "run", str(job), "--set", f"input.path={json.dumps(str(case[0]))}", "-q"],
                              capture_output=True, text=True, timeout=120)
        return proc.returncode, proc.stderr

    with ThreadPoolExecutor(4) as pool:
        for name, case in cases.items():
            codes = list(pool.map(once, [case] * 50))
            wrong = [(code, err) for code, err in codes if code != case[1]]
            assert not wrong, f"{name}: {len(wrong)} of 50 runs exited {wrong[0][0]}: {wrong[0][1][-300:]}"
    assert not (tmp_path / "out").exists()


def test_sigterm_is_ctrl_c_committed_units_kept_lock_released(tmp_path, tiny_classifier):
    """Defect 10: SIGTERM exited at once with no message and left the lock."""
    import time

    (tmp_path / "data").mkdir()
    make_frame(200, seed=1).write_parquet(tmp_path / "data" / "a.parquet")
    job = write_job(tmp_path, tiny_classifier, paths="data")
    release = tmp_path / "release"
    proc = subprocess.Popen([EXE, "run", str(job), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "BATCHINFER_TEST_HOLD_UNTIL": str(release)})
    lock = tmp_path / "out" / "_batchinfer" / "lock"
    deadline = time.time() + 120
    while not lock.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "terminated" in err and "committed units are kept" in err
    assert not lock.exists()
    result = cli("run", str(job))
    assert result.exit_code == 0, result.output
    assert read_both(tmp_path / "out")["row_id"].to_list() == list(range(200))


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_duplicate_input_column_names_are_an_input_error(tmp_path, tiny_classifier, kind):
    """Defect 9: exit 1 (Parquet) or an unreadable output (CSV) for two columns of one name."""
    if kind == "csv":
        (tmp_path / "in.csv").write_text("id,text,id\n1,fine,2\n")
    else:
        pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array(["fine"]), pa.array([2])],
                                            names=["id", "text", "id"]), tmp_path / "in.parquet")
    result = cli("run", str(write_job(tmp_path, tiny_classifier, paths=f"in.{kind}", mode="error")))
    assert result.exit_code == InputError.exit_code, result.output
    assert "more than one column named 'id'" in result.output and f"in.{kind}" in result.output


@pytest.mark.parametrize("setting, message", [
    ("output.keep_columns=['id', 'id']", "'id' listed more than once"),
    ("input.path=[]", "input.path: Value error, give at least one file"),
    ("output.path=''", "output.path: Value error, the output folder is empty"),
])
def test_plain_mistakes_in_the_job_are_job_file_errors(tmp_path, tiny_classifier, setting, message):
    make_frame(10).write_parquet(tmp_path / "in.parquet")
    result = cli("run", str(write_job(tmp_path, tiny_classifier, paths="in.parquet", mode="error")), "--set",
                 setting)
    assert result.exit_code == JobFileError.exit_code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_messages_that_misled(tmp_path, tiny_classifier):
    """Defect 13: a job with a BOM, a .tsv, an inch mark in an unquoted field, a late type mismatch, and a
    numeric-looking text column."""
    job = write_job(tmp_path, tiny_classifier, paths="in.tsv", mode="overwrite")
    job.write_bytes(b"\xef\xbb\xbf" + job.read_bytes())
    (tmp_path / "in.tsv").write_text('id\ttext\tsize\n1\ta 5" screen\t5" wide\n2\tfine\tok\n')
    result = cli("run", str(job))
    assert result.exit_code == 0, result.output
    got = read_both(tmp_path / "out")
    assert got["text"].to_list() == ['a 5" screen', "fine"] and got["size"][0] == '5" wide'

    pad = "p" * 200  # the first block (1 MB) holds only numbers in `id`: inferred int64
    (tmp_path / "late.csv").write_text("id,text,pad\n" + "".join(f"{i},t,{pad}\n" for i in range(6000)) + "x,t,p\n")
    result = cli("run", str(job), "--set", f"input.path={json.dumps(str(tmp_path / 'late.csv'))}",
                 "--set", "input.batch_rows=8000")
    assert result.exit_code == InputError.exit_code, result.output
    assert "late.csv" in result.output and "input.csv.infer_types = false" in result.output

    (tmp_path / "numbers.csv").write_text("id,text\n1,12\n2,13\n")
    result = cli("run", str(job), "--set", f"input.path={json.dumps(str(tmp_path / 'numbers.csv'))}")
    assert result.exit_code == InputError.exit_code and "has type int64, not text" in result.output
    assert "input.csv.infer_types = false" in result.output


@pytest.mark.parametrize("on_error", ["skip", "dead-letter"])
def test_a_ragged_row_that_is_not_utf8_is_a_bad_row(tmp_path, tiny_classifier, on_error):
    """Defect 5: pyarrow cannot hand such a row to our handler; it refused the job (exit 4) with a traceback."""
    rows = b"".join(f"{i},text {i}\n".encode() for i in range(100))
    (tmp_path / "in.csv").write_bytes(b"id,text\n" + rows + b"1,caf\xe9,extra\n" + rows.replace(b"text", b"more")
                                      + b"7,bad,row\n8,caf\xe9 ok\n")
    job = write_job(tmp_path, tiny_classifier, paths="in.csv", mode="error", extra=f'on_error = "{on_error}"')
    proc = subprocess.run([EXE, "run", str(job), "-q"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 8, proc.stderr
    assert "Traceback" not in proc.stderr and "3 row(s) failed" in proc.stdout
    got = read_both(tmp_path / "out")
    assert got["id"].to_list() == list(range(100)) * 2 and got.height == 200
    assert got["text"][150] == "more 50"
    if on_error == "dead-letter":
        dead = pl.read_parquet(str(tmp_path / "out" / "_dead_letter" / "*.parquet"))
        assert sorted(dead["_error"].to_list()) == ["expected 2 columns, got 3: 1,caf\ufffd,extra",
                                                     "expected 2 columns, got 3: 7,bad,row",
                                                     "text is not valid UTF-8 (byte 3: b'\\xe9 ok')"]
