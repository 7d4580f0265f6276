"""Sources stream in bounded batches and list files predictably."""

from __future__ import annotations

import polars as pl
import pytest

from batchinfer.errors import InputError
from batchinfer.io import Source
from batchinfer.job import InputSpec


def frame(n: int) -> pl.DataFrame:
    return pl.DataFrame({"id": range(n), "text": [f"row {i}, with \"quotes\"\nand a newline" for i in range(n)]})


def test_parquet_streams_in_batches(tmp_path):
    frame(2500).write_parquet(tmp_path / "a.parquet", row_group_size=500)
    source = Source(InputSpec(path=str(tmp_path / "a.parquet"), column="text", batch_rows=1000))
    batches = list(source.batches(["id", "text"], "text"))
    assert [b.batch.num_rows for b in batches] == [1000, 1000, 500]
    assert source.total_rows() == 2500


def test_csv_is_regrouped_into_batches_of_rows(tmp_path):
    frame(2500).write_csv(tmp_path / "a.csv")
    source = Source(InputSpec(path=str(tmp_path / "a.csv"), column="text", batch_rows=1000))
    batches = list(source.batches(["id", "text"], "text"))
    assert [b.batch.num_rows for b in batches] == [1000, 1000, 500]
    # the text column comes as bytes so that one undecodable value fails its row, not the block
    assert batches[2].batch.column("text")[0].as_py() == b'row 2000, with "quotes"\nand a newline'
    assert source.total_rows() is None


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.zst", ".jsonl", ".ndjson.zst"])
def test_compressed_csv_and_json_lines_stream_as_plain_csv(tmp_path, suffix):
    import bz2
    import gzip
    import io

    import zstandard

    data = frame(2500)
    buffer = io.BytesIO()
    data.write_ndjson(buffer) if "json" in suffix else data.write_csv(buffer)
    pack = {".gz": gzip.compress, ".bz2": bz2.compress, ".zst": zstandard.ZstdCompressor().compress}
    raw = buffer.getvalue()
    ending = "." + suffix.rsplit(".", 1)[1]
    (tmp_path / f"a{suffix}").write_bytes(pack[ending](raw) if ending in pack else raw)
    source = Source(InputSpec(path=str(tmp_path / f"a{suffix}"), column="text", batch_rows=1000))
    source.check("text", None)
    batches = list(source.batches(["id", "text"], "text"))
    assert [b.batch.num_rows for b in batches] == [1000, 1000, 500]
    assert [b.row_offset for b in batches] == [0, 1000, 2000]
    assert batches[2].batch.column("text")[0].as_py() == b'row 2000, with "quotes"\nand a newline'
    assert batches[2].batch.column("id")[499].as_py() == 2499
    assert source.rows_estimate() == (2500, True)  # read to the end: exact


def test_folder_lists_data_files_in_name_order_and_skips_hidden(tmp_path):
    for name in ["b.parquet", "a.parquet", "_meta.parquet", ".hidden.parquet"]:
        frame(3).write_parquet(tmp_path / name)
    (tmp_path / "notes.txt").write_text("x")
    source = Source(InputSpec(path=str(tmp_path), column="text"))
    assert [p.rsplit("/", 1)[1] for p in source.files] == ["a.parquet", "b.parquet"]


def test_semicolon_csv_and_unknown_extension(tmp_path):
    (tmp_path / "a.csv").write_text("id;text\n1;hello\n2;world\n")
    source = Source(InputSpec(path=str(tmp_path / "a.csv"), column="text", csv={"delimiter": ";"}))
    assert list(source.batches(["id", "text"], "text"))[0].batch.column("text").to_pylist() == [b"hello", b"world"]
    (tmp_path / "data.bin").write_text("x")
    with pytest.raises(InputError, match="input.format"):
        Source(InputSpec(path=str(tmp_path / "data.bin"), column="text"))


def test_corrupt_parquet_names_the_file(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="bad.parquet"):
        Source(InputSpec(path=str(tmp_path / "bad.parquet"), column="text")).check("text", None)
