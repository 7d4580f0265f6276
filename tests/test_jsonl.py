"""JSON Lines input (`.jsonl`, `.ndjson`, compressed): the same predictions as the rows in Parquet; types inferred
from the first lines (mixed fields as text, absent fields null); bad lines are row errors naming the file and
line; with on_error = "fail" the read stops there, keeping what was written."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from batchinfer.errors import EXIT_ROWS_FAILED, InputError
from batchinfer.io import Source
from batchinfer.job import InputSpec
from tests.test_cli import invoke, job, make_frame, read_output


def lines_of(frame: pl.DataFrame) -> list[str]:
    return [json.dumps(row) for row in frame.to_dicts()]


def test_jsonl_files_predict_as_parquet_does(tmp_path, tiny_classifier):
    frame = make_frame(2400, seed=3)
    data = tmp_path / "data"
    data.mkdir()
    rows = lines_of(frame)
    (data / "a.jsonl").write_text("\n".join(rows[:900]) + "\n\n")  # a blank line is skipped
    (data / "b.jsonl.gz").write_bytes(gzip.compress(("\n".join(rows[900:1800]) + "\n").encode()))
    (data / "c.ndjson.zst").write_bytes(zstandard.ZstdCompressor().compress("\n".join(rows[1800:]).encode()))
    frame.write_parquet(tmp_path / "same.parquet")
    result = invoke("run", str(job(tmp_path, tiny_classifier, input_path="data")))
    assert result.exit_code == 0, result.output
    result = invoke("run", str(job(tmp_path, tiny_classifier, input_path="same.parquet", output="out_parquet")))
    assert result.exit_code == 0, result.output
    got, want = read_output(tmp_path / "out"), read_output(tmp_path / "out_parquet")
    assert got.columns == want.columns and got.height == 2400
    assert got.sort("row_id").equals(want.sort("row_id"))
    table = pq.read_table(str(tmp_path / "out"))  # pyarrow reads the multi-file output too
    assert table.num_rows == 2400 and table.schema.field("row_id").type == pa.int64()


def test_types_are_inferred_and_bad_lines_are_row_errors(tmp_path, tiny_classifier, monkeypatch):
    import batchinfer.io.formats.jsonl as jsonl

    monkeypatch.setattr(jsonl, "JSON_BLOCK", 400)  # the first few lines decide the types
    good = [{"id": i, "text": f"text number {i}", "meta": {"k": i}, "mixed": i if i % 2 else f"s{i}"}
            for i in range(12)]
    good[4].pop("meta")  # a field a line leaves out: null
    lines = [json.dumps(r) for r in good]
    lines.insert(3, '{"id": 100, "text": "cut off')  # not JSON
    lines.insert(6, '[1, 2, 3]')  # not an object
    lines.insert(9, '{"id": "eleven", "text": "an id that is not a number"}')  # does not fit int64
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(lines) + "\r\n").encode()  # a BOM, Windows line ends
                     + b'{"id": 7, "text": "caf\xe9"}\n')  # not UTF-8
    spec = job(tmp_path, tiny_classifier, input_path="in.jsonl")
    spec.write_text(spec.read_text().replace("[input]\n", "[input]\non_error = \"dead-letter\"\n"))
    result = invoke("run", str(spec))
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    out = read_output(tmp_path / "out").sort("id")
    assert out["id"].to_list() == list(range(12))
    assert out["meta"].to_list()[3:6] == [{"k": 3}, None, {"k": 5}]
    assert out["mixed"].to_list()[:3] == ["s0", "1", "s2"]  # mixed types: text, numbers as their JSON text
    dead = pl.read_parquet(str(tmp_path / "out" / "_dead_letter" / "*.parquet")).sort("_source_row")
    assert dead["_source_row"].to_list() == [4, 7, 10, 16]
    assert all(f.endswith("in.jsonl") for f in dead["_source_file"].to_list())
    errors = dead["_error"].to_list()
    assert errors[0].startswith("not JSON") and "cut off" in errors[0]
    assert errors[1].startswith("a line must be a JSON object, not list")
    assert "'id' is \"eleven\", which does not fit the column's type int64" in errors[2]
    assert errors[3].startswith("the line is not UTF-8 text")
    assert pq.read_table(str(tmp_path / "out" / "_dead_letter")).num_rows == 4

    spec.write_text(spec.read_text().replace('on_error = "dead-letter"', 'on_error = "fail"')
                    .replace('path = "out"', 'path = "out_fail"'))
    result = invoke("run", str(spec))
    assert result.exit_code == InputError.exit_code
    assert "in.jsonl: line 4: not JSON" in result.output and "on_error" in result.output


def test_a_file_without_objects_is_not_json_lines(tmp_path):
    (tmp_path / "in.jsonl").write_text("id,text\n1,hello\n")
    try:
        Source(InputSpec(path=str(tmp_path / "in.jsonl"), column="text")).check("text", None)
    except InputError as exc:
        assert "no line of its first 1 MB is a JSON object" in str(exc)
    else:
        raise AssertionError("a CSV file named .jsonl was read")
