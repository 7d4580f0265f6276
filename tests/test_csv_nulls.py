"""CSV empty fields: an unquoted empty field is null and a quoted "" is empty text (as polars reads them), in
the fast path and in the Python fallback alike, for text (read as bytes) and kept columns."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest

from batchinfer.io import Source
from batchinfer.job import InputSpec

ROWS = 'id,text,note,n\n1,"",x,1\n2,,"",\n3,hi,,3\n4,"a, b",y,\n'


def read(path, column="text", **csv):
    source = Source(InputSpec(path=str(path), column=column, batch_rows=100, on_error="skip", csv=csv))
    source.check(column, None)
    batches = list(source.batches(source.schema.names, column, keep_bad_rows=True))
    return pa.Table.from_batches([b.batch for b in batches]), [r for b in batches for r in b.bad_rows]


def as_text(table):
    return {c: [v.decode() if isinstance(v, bytes) else v for v in table.column(c).to_pylist()]
            for c in table.column_names}


def test_empty_fields_are_null_and_quoted_empties_are_text_as_polars_reads_them(tmp_path):
    (tmp_path / "in.csv").write_text(ROWS)
    table, _ = read(tmp_path / "in.csv")
    want = pl.read_csv(tmp_path / "in.csv").to_dict(as_series=False)
    assert as_text(table) == want
    assert want["text"] == ["", None, "hi", "a, b"] and want["note"] == ["x", "", None, "y"]
    assert table.column("text").type == pa.binary()  # nulls survive the bytes read of text columns


def test_empty_as_null_false_reads_empty_text(tmp_path):
    (tmp_path / "in.csv").write_text(ROWS)
    table, _ = read(tmp_path / "in.csv", empty_as_null=False)
    got = as_text(table)
    assert got["text"] == ["", "", "hi", "a, b"] and got["note"] == ["x", "", "", "y"]
    assert got["n"] == [1, None, 3, None]  # a number has no empty text


@pytest.mark.parametrize("empty_as_null", [True, False])
def test_the_python_fallback_gives_the_same_values_and_nulls(tmp_path, empty_as_null):
    (tmp_path / "good.csv").write_text(ROWS)
    # a ragged row that is not UTF-8 sends the read to Python's csv module
    (tmp_path / "bad.csv").write_bytes(ROWS.encode() + b'5,caf\xe9,z,5,extra\n6,,,6\n\n7,"",q,\n')
    good, _ = read(tmp_path / "good.csv", empty_as_null=empty_as_null)
    bad, bad_rows = read(tmp_path / "bad.csv", empty_as_null=empty_as_null)
    assert len(bad_rows) == 1 and bad_rows[0].error == "expected 4 columns, got 5"
    null = None if empty_as_null else ""
    assert as_text(bad) == {c: v + w for (c, v), w in zip(as_text(good).items(),
                                                          [[6, 7], [null, ""], [null, "q"], [6, None]])}


def test_leading_zeros_keep_an_id_column_as_text(tmp_path, caplog):
    (tmp_path / "a.csv").write_text("id,zip,n,text\n00001,-0123,7,a\n00002,10115,-8,b\n10,,0,c\n")
    (tmp_path / "b.csv").write_text("id,zip,n,text\n3,20095,9,d\n")  # no zeros here: still text (one schema)
    with caplog.at_level("INFO", logger="batchinfer"):
        table, _ = read(tmp_path)
    assert table.column("id").to_pylist() == ["00001", "00002", "10", "3"]
    assert table.column("zip").to_pylist() == ["-0123", "10115", None, "20095"]
    assert table.column("n").type == pa.int64() and table.column("n").to_pylist() == [7, -8, 0, 9]
    assert "'id', 'zip'" in caplog.text and "leading zeros" in caplog.text


def test_leading_zeros_decide_for_every_block_of_a_file(tmp_path, monkeypatch):
    import batchinfer.io.formats.csv as csv_format

    monkeypatch.setattr(csv_format, "CSV_BLOCK", 64)  # blocks of a few rows: later ones have no zeros
    rows = ["id,text"] + [f"{i:05d},t{i}" if i < 3 else f"{i + 10000},t{i}" for i in range(40)]
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    table, _ = read(tmp_path / "a.csv")
    assert table.column("id").type == pa.string()
    assert table.column("id").to_pylist()[:4] == ["00000", "00001", "00002", "10003"]


def test_header_false_names_columns_f0_f1(tmp_path):
    (tmp_path / "a.csv").write_text("007,hello\n008,\n")
    table, _ = read(tmp_path / "a.csv", column="f1", header=False)
    assert table.column_names == ["f0", "f1"]
    assert as_text(table) == {"f0": ["007", "008"], "f1": ["hello", None]}


def test_a_job_keeps_leading_zeros_and_resumes_on_the_same_schema(tmp_path, tiny_classifier):
    import json

    from click.testing import CliRunner

    from batchinfer.cli import main

    (tmp_path / "in.csv").write_text("id,text\n00001,good\n00002,\n3,bad\n")
    (tmp_path / "job.toml").write_text(f"""
[input]
path = "in.csv"
column = "text"
batch_rows = 2
[model]
name = {json.dumps(str(tiny_classifier))}
task = "text-classification"
[output]
path = "out"
""")
    for mode in ("overwrite", "resume"):
        result = CliRunner().invoke(main, ["run", str(tmp_path / "job.toml"), "--set", f"output.mode={mode}"])
        assert result.exit_code == 0, result.output
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    assert out["id"].to_list() == ["00001", "00002", "3"] and out["text"].to_list() == ["good", None, "bad"]
