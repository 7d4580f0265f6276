"""A polars DataFrame or LazyFrame as a Source: the same record batches and checks as files give."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import fsspec
import pyarrow as pa

from batchinfer.errors import InputError
from batchinfer.io.schema import is_text_type, names_of
from batchinfer.io.source import SourceBatch
from batchinfer.media import medium


class FrameSource:
    """One in-memory or lazy frame, read in batches of `batch_rows` (a LazyFrame is collected in chunks)."""

    formats = ["frame"]

    def __init__(self, frame, *, batch_rows: int, label: str = "<frame>") -> None:
        import polars as pl

        self.frame = frame
        self.lazy = isinstance(frame, pl.LazyFrame)
        self.batch_rows = batch_rows
        self.files = [label]
        self.fs = fsspec.filesystem("file")
        schema = frame.collect_schema() if self.lazy else frame.schema
        self.schema = pa.schema([pa.field(name, _arrow_type(dtype)) for name, dtype in schema.items()])

    def schema_of(self, index: int) -> pa.Schema:
        return self.schema

    def check(self, column: str | list[str], keep: list[str] | None, *, modality: str = "text") -> pa.Schema:
        names = self.schema.names
        for name in names_of(column):
            if name not in names:
                raise InputError(f"the frame has no column {name!r}; its columns are: {', '.join(names)}")
            fits = is_text_type if modality == "text" else medium(modality).column_fits
            if not fits(self.schema.field(name).type):
                raise InputError(f"column {name!r} has type {self.schema.field(name).type}, not {modality}")
        missing = [c for c in keep or [] if c not in names]
        if missing:
            raise InputError(f"the frame has no column(s) {', '.join(map(repr, missing))}; "
                             f"its columns are: {', '.join(names)}")
        return self.schema

    def reads_under(self, fs, root: str) -> str | None:
        return None  # a frame reads no files

    def total_rows(self) -> int | None:
        return None if self.lazy else self.frame.height

    def rows_estimate(self) -> tuple[int, bool] | None:
        """A LazyFrame's rows are known only once collected: no estimate."""
        rows = self.total_rows()
        return None if rows is None else (rows, True)

    def versions(self) -> list[tuple[str, int | None, str]]:
        """A frame has no file versions; its schema stands in (as Source.versions does for files)."""
        return [(self.files[0], None, hashlib.sha256(str(self.schema).encode()).hexdigest()[:16])]

    def batches(self, columns: list[str], text_column: str | None, *, keep_bad_rows: bool = False
                ) -> Iterator[SourceBatch]:
        frame = self.frame.select(columns)
        chunks = frame.collect_batches(chunk_size=self.batch_rows) if self.lazy else \
            (frame.slice(i, self.batch_rows) for i in range(0, frame.height, self.batch_rows))
        offset, index = 0, 0
        for chunk in _rebatch(chunks, self.batch_rows):
            for batch in chunk.to_arrow().combine_chunks().to_batches():
                yield SourceBatch(0, self.files[0], index, batch, offset)
                offset += batch.num_rows
                index += 1


def _rebatch(chunks, rows: int):
    """Chunks of any size from polars, regrouped into frames of exactly `rows` rows (the last may be short)."""
    import polars as pl

    pending: list = []
    count = 0
    for chunk in chunks:
        pending.append(chunk)
        count += chunk.height
        while count >= rows:
            whole = pl.concat(pending, rechunk=True)
            yield whole.slice(0, rows)
            rest = whole.slice(rows)
            pending, count = ([rest] if rest.height else []), rest.height
    if count:
        yield pl.concat(pending, rechunk=True)


def _arrow_type(dtype) -> pa.DataType:
    import polars as pl

    return pl.DataFrame(schema={"x": dtype}).to_arrow().schema.field("x").type
