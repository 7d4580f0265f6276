"""input.null_text = "null": a row whose input is null is kept, not sent to the model, with null predictions."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from batchinfer.cli import main
from batchinfer.errors import EXIT_ROWS_FAILED

TEXTS = ["a fine film", None, "dull", None, "caf\xe9 bytes", "long enough to read", None, "last"]


def write_input(tmp_path, fmt: str) -> str:
    if fmt == "parquet":
        values = [None if t is None else t.encode("latin-1" if "\xe9" in t else "utf-8") for t in TEXTS]
        pq.write_table(pa.table({"id": list(range(8)), "text": pa.array(values, pa.binary()),
                                 "title": ["t"] * 7 + [None]}), tmp_path / "in.parquet")
        return "in.parquet"
    lines = [b"id,text,title"] + [f"{i},".encode() + (b"" if t is None else t.encode("latin-1"))
                                  + (b",t" if i < 7 else b",") for i, t in enumerate(TEXTS)]
    (tmp_path / "in.csv").write_bytes(b"\n".join(lines) + b"\n")
    return "in.csv"


def run(tmp_path, model, task, input_path, null_text="null", **extra):
    more = "\n".join(f"{k} = {json.dumps(v)}" for k, v in extra.items())
    (tmp_path / "job.toml").write_text(f"""
[input]
path = "{input_path}"
batch_rows = 3
null_text = "{null_text}"
on_error = "skip"
{more}
[model]
name = {json.dumps(str(model))}
task = "{task}"
[output]
path = "out"
mode = "overwrite"
""")
    return CliRunner().invoke(main, ["run", str(tmp_path / "job.toml")])


def read_back(tmp_path):
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet")).sort("id")
    table = ds.dataset(str(tmp_path / "out"), format="parquet").to_table().sort_by("id")
    assert out.height == table.num_rows
    return out, table


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_null_texts_get_null_predictions(tmp_path, tiny_classifier, fmt):
    result = run(tmp_path, tiny_classifier, "text-classification", write_input(tmp_path, fmt), column="text")
    assert result.exit_code == EXIT_ROWS_FAILED, result.output  # row 4 is not UTF-8: the one bad row
    assert "1 row(s) failed" in result.output
    out, table = read_back(tmp_path)
    assert out["id"].to_list() == [0, 1, 2, 3, 5, 6, 7]
    assert out["label"].is_null().to_list() == [False, True, False, True, False, True, False]
    assert out["score"].is_null().to_list() == out["label"].is_null().to_list()
    assert table.column("label").null_count == 3 and table.column("score").null_count == 3
    assert json.loads((tmp_path / "out" / "_SUCCESS").read_text())["failed"] == 1


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_template_with_a_null_column_is_a_null_text(tmp_path, tiny_encoder, fmt):
    result = run(tmp_path, tiny_encoder, "feature-extraction", write_input(tmp_path, fmt),
                 template="{title}: {text}")
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    out, table = read_back(tmp_path)
    assert out["embedding"].is_null().to_list() == [False, True, False, True, False, True, True]
    assert table.schema.field("embedding").type.list_size > 0  # still a fixed-size list, with nulls
    assert all(len(v) == table.schema.field("embedding").type.list_size
               for v in table.column("embedding").to_pylist() if v is not None)


def test_empty_and_error_are_unchanged(tmp_path, tiny_classifier):
    path = write_input(tmp_path, "parquet")
    result = run(tmp_path, tiny_classifier, "text-classification", path, column="text", null_text="empty")
    assert result.exit_code == EXIT_ROWS_FAILED and "1 row(s) failed" in result.output
    assert read_back(tmp_path)[0]["label"].null_count() == 0
    result = run(tmp_path, tiny_classifier, "text-classification", path, column="text", null_text="error")
    assert result.exit_code == EXIT_ROWS_FAILED and "4 row(s) failed" in result.output


def test_null_text_error_fires_on_csv_empty_fields(tmp_path, tiny_classifier):
    (tmp_path / "in.csv").write_text('id,text\n1,fine\n2,\n3,""\n')
    result = run(tmp_path, tiny_classifier, "text-classification", "in.csv", column="text", null_text="error")
    assert result.exit_code == EXIT_ROWS_FAILED and "1 row(s) failed" in result.output  # row 2; "" is text
    assert read_back(tmp_path)[0]["id"].to_list() == [1, 3]
