"""Parquet: read batch by batch; a read may start at any batch (only the row groups that hold its rows)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from batchinfer import faults
from batchinfer.io.formats.base import FileFormat, SourceBatch, drop_rows, rebatch


class ParquetFormat(FileFormat):
    name = "parquet"
    suffixes = (".parquet", ".pq", ".parq")
    starts_anywhere = True

    def schema(self, source, path: str) -> pa.Schema:
        with source.fs.open(path, "rb") as fh:
            return pq.ParquetFile(fh).schema_arrow

    def rows(self, source, path: str) -> int | None:
        with source.fs.open(path, "rb") as fh:
            return pq.ParquetFile(fh).metadata.num_rows

    def batches(self, source, i: int, path: str, columns: list[str], text_column: str | None, *,
                keep_bad_rows: bool, first: int = 0, stop: int | None = None) -> Iterator[SourceBatch]:
        size = source.spec.batch_rows
        with source.fs.open(path, "rb") as fh:
            pf = pq.ParquetFile(fh)
            if not first and stop is None:
                stream, skip = pf.iter_batches(batch_size=size, columns=columns), 0
            else:  # only the row groups that hold the wanted rows
                meta, start = pf.metadata, first * size
                end = meta.num_rows if stop is None else min(stop * size, meta.num_rows)
                groups, row, skip = [], 0, 0
                for g in range(meta.num_row_groups):
                    n = meta.row_group(g).num_rows
                    if row + n > start and row < end:
                        skip = skip if groups else start - row
                        groups.append(g)
                    row += n
                if not groups:
                    return
                stream = rebatch(drop_rows(pf.iter_batches(batch_size=size, columns=columns, row_groups=groups),
                                           skip), size)
            for j, batch in enumerate(stream, start=first):
                if stop is not None and j >= stop:
                    return
                faults.hit("read")
                yield SourceBatch(i, path, j, source.conform_batch(batch, text_column), j * size)


FORMAT = ParquetFormat()
