"""A Source that reads only the first N rows of the job's input: `batchinfer run JOB.toml --limit N`."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

from batchinfer.io.source import Source, SourceBatch
from batchinfer.job import InputSpec


class LimitedSource(Source):
    """The job's files, read in order until `limit` rows have been read; nothing after them is read.

    Record batches are at most `limit` rows (so a Parquet file or CSV block is not read past what is needed),
    the last batch is cut to the limit, and the reading stops there. Files after the limit still get their
    empty part, so the output has the job's schema.
    """

    def __init__(self, spec: InputSpec, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        super().__init__(spec.model_copy(update={"batch_rows": min(spec.batch_rows, limit)}))
        self.limit = limit

    def batches(self, columns, text_column, *, keep_bad_rows: bool = False, files=None, first: int = 0,
                stop=None) -> Iterator[SourceBatch]:
        left = self.limit
        with contextlib.closing(super().batches(columns, text_column, keep_bad_rows=keep_bad_rows, files=files,
                                                first=first, stop=stop)) as stream:
            for sb in stream:
                if sb.batch.num_rows >= left:
                    yield dataclasses.replace(sb, batch=sb.batch.slice(0, left))
                    return
                left -= sb.batch.num_rows
                yield sb

    def total_rows(self) -> int | None:
        rows = super().total_rows()  # None while a CSV file's rows are unknown
        return None if rows is None else min(rows, self.limit)

    def rows_estimate(self) -> tuple[int, bool] | None:
        got = super().rows_estimate()
        if got is None:
            return None
        rows, exact = got
        return (self.limit, True) if rows >= self.limit else (rows, exact)
