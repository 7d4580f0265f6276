"""Bad rows follow input.on_error: fail names the file and row, skip leaves them out, dead-letter keeps them."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from batchinfer.cli import main
from batchinfer.errors import EXIT_ROWS_FAILED, InputError, RowErrors


def write_job(tmp_path, model, input_path, **sections) -> str:
    extra = "\n".join(f"{k} = {json.dumps(v)}" for k, v in sections.pop("input", {}).items())
    model_extra = "\n".join(f"{k} = {json.dumps(v)}" for k, v in sections.pop("model", {}).items())
    path = tmp_path / "job.toml"
    path.write_text(f"""
[input]
path = "{input_path}"
column = "text"
batch_rows = 4
{extra}
[model]
name = {json.dumps(str(model))}
task = "text-classification"
{model_extra}
[output]
path = "out"
""")
    return str(path)


def run(job, *sets):
    return CliRunner().invoke(main, ["run", job, *[a for s in sets for a in ("--set", s)]])


@pytest.fixture
def binary_input(tmp_path):
    """Ten rows of bytes: row 6 is not UTF-8, row 8 is null."""
    values = [f"review number {i}".encode() for i in range(10)]
    values[6] = b"caf\xe9 latin-1"
    values[8] = None
    pq.write_table(pa.table({"id": list(range(10)), "text": pa.array(values, pa.binary())}), tmp_path / "in.parquet")
    return tmp_path


def test_fail_names_file_and_row_and_keeps_committed_units(binary_input, tiny_classifier):
    job = write_job(binary_input, tiny_classifier, "in.parquet", input={"null_text": "error"})
    result = run(job)
    assert result.exit_code == RowErrors.exit_code, result.output
    assert "in.parquet, row 6: text is not valid UTF-8 (byte 3" in result.output
    out = binary_input / "out"
    assert (out / "part-00000-000000.parquet").exists() and not (out / "_SUCCESS").exists()  # rows 0-3 kept
    # fix the file and resume: only its units are redone, and the output is complete
    pq.write_table(pa.table({"id": list(range(10)), "text": [f"review number {i}" for i in range(10)]}),
                   binary_input / "in.parquet")
    result = run(job, "output.mode=resume")
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(str(binary_input / "out" / "*.parquet"))
    assert out["id"].to_list() == list(range(10)) and out["text"][6] == "review number 6"


def test_skip_leaves_bad_rows_out_and_reports_them(binary_input, tiny_classifier):
    result = run(write_job(binary_input, tiny_classifier, "in.parquet",
                           input={"null_text": "error", "on_error": "skip"}))
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    assert "2 row(s) failed" in result.output
    out = pl.read_parquet(str(binary_input / "out" / "*.parquet"))
    assert out["id"].to_list() == [0, 1, 2, 3, 4, 5, 7, 9]
    assert out.schema["text"] == pl.String
    assert json.loads((binary_input / "out" / "_SUCCESS").read_text())["failed"] == 2


def test_dead_letter_keeps_bad_rows_with_their_error(binary_input, tiny_classifier):
    result = run(write_job(binary_input, tiny_classifier, "in.parquet",
                           input={"null_text": "error", "on_error": "dead-letter"}))
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    dead = pl.read_parquet(str(binary_input / "out" / "_dead_letter" / "*.parquet"))
    assert dead["id"].to_list() == [6, 8]
    assert dead["_source_row"].to_list() == [6, 8]
    assert dead["_error"][0].startswith("text is not valid UTF-8") and "null" in dead["_error"][1]
    assert dead["text"][0] == "caf\ufffd latin-1"
    assert pl.read_parquet(str(binary_input / "out" / "*.parquet")).height == 8


def test_nulls_are_predicted_by_default(binary_input, tiny_classifier):
    result = run(write_job(binary_input, tiny_classifier, "in.parquet", input={"on_error": "skip"}))
    assert result.exit_code == EXIT_ROWS_FAILED and "1 row(s) failed" in result.output  # only the bad bytes


def test_ragged_csv_rows(tmp_path, tiny_classifier):
    (tmp_path / "in.csv").write_text('id,text\n1,fine\n2,"also, fine"\n3,too,many\n4,ok\n')
    result = run(write_job(tmp_path, tiny_classifier, "in.csv"))
    assert result.exit_code == InputError.exit_code
    assert "in.csv" in result.output and "Expected 2 columns, got 3" in result.output
    result = run(write_job(tmp_path, tiny_classifier, "in.csv", input={"on_error": "dead-letter"}),
                 "output.mode=overwrite")
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    assert pl.read_parquet(str(tmp_path / "out" / "*.parquet"))["id"].to_list() == [1, 2, 4]
    dead = pl.read_parquet(str(tmp_path / "out" / "_dead_letter" / "*.parquet"))
    assert dead["_error"].to_list() == ["expected 2 columns, got 3: 3,too,many"]


def test_long_texts_are_truncated_and_counted_or_rejected(tmp_path, tiny_classifier):
    texts = ["short", "word " * 100, "fine", "word " * 63]  # the tiny model takes 64 tokens with [CLS] [SEP]
    pl.DataFrame({"text": texts}).write_parquet(tmp_path / "in.parquet")
    job = write_job(tmp_path, tiny_classifier, "in.parquet")
    result = run(job)
    assert result.exit_code == 0 and "2 row(s) truncated" in result.output
    assert json.loads((tmp_path / "out" / "_SUCCESS").read_text())["truncated"] == 2
    result = run(job, "model.truncation=false", "input.on_error=dead-letter", "output.mode=overwrite")
    assert result.exit_code == EXIT_ROWS_FAILED
    dead = pl.read_parquet(str(tmp_path / "out" / "_dead_letter" / "*.parquet"))
    assert dead["_source_row"].to_list() == [1, 3]
    assert dead["_error"][0] == "text has 102 tokens, more than max_length 64 (model.truncation = false)"
