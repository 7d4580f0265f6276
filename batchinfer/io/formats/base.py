"""What every input file format shares: the batches a source yields, the rows a reader could not parse, and
the small Arrow helpers the readers use."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import pyarrow as pa

from batchinfer.io import layout


@dataclass(frozen=True)
class BadRow:
    """A row that could not be parsed (a ragged CSV row, a JSON line that is not an object), skipped under
    on_error = skip or dead-letter."""

    line: int | None
    error: str
    text: str


@dataclass(frozen=True)
class SourceBatch:
    file_index: int
    file: str
    batch_index: int
    batch: pa.RecordBatch
    row_offset: int = 0  # rows of this file before this batch
    bad_rows: tuple[BadRow, ...] = ()


class FileFormat:
    """One input file format (a module under io/formats/, registered in FORMAT_MODULES): how its files are
    named, what schema a file has, and its record batches. The methods take the Source, whose spec, filesystem,
    job schema and read progress they use."""

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]  # lower-case file name endings that mean this format
    infers_types: ClassVar[bool] = False  # are column types guessed from values (CSV, JSON Lines)?
    starts_anywhere: ClassVar[bool] = False  # can a read start at any batch (Parquet: row groups)?
    type_hint: ClassVar[str] = "input.column must name a string column: cast it to a string type in the file"
    is_table: ClassVar[bool] = False  # one table of many pieces (Delta, Iceberg, Lance), listed by `list_table`
    named_in_catalog: ClassVar[bool] = False  # found by input.table in input.catalog, not by input.path
    table_options: ClassVar[tuple[str, ...]] = ()  # the input keys a table format takes (version, filters)

    def is_table_folder(self, fs, root: str) -> bool:
        """Is the folder `root` one table of this format (input.format = auto finds tables by their folders)?"""
        return False

    def list_table(self, source, url: str | None) -> TableListing:
        """A table format's pieces at one version (`source.pin`: the version a resumed run read, else the
        job's input.version or the latest)."""
        raise NotImplementedError

    def schema(self, source, path: str) -> pa.Schema:
        raise NotImplementedError

    def rows(self, source, path: str) -> int | None:
        """The file's rows without reading it (Parquet's footer), else None."""
        return None

    def batches(self, source, i: int, path: str, columns: list[str], text_column: str | None, *,
                keep_bad_rows: bool, first: int = 0, stop: int | None = None) -> Iterator[SourceBatch]:
        """Batches of `batch_rows` rows of file `i`; bad rows ride on the batch after them (`keep_bad_rows`),
        else stop the read with an InputError naming the file and line."""
        raise NotImplementedError

    def read_hint(self, source, error: Exception) -> str:
        """What to tell the user when reading the file fails with `error`."""
        return "fix or remove the file; "


@dataclass(frozen=True)
class TableListing:
    """What a table format read at one version: its pieces (data files or fragments: immutable), their sizes
    and rows where known, and the version itself (a resumed run reads this one again)."""

    version: int
    pieces: list[str]
    sizes: list[int | None]
    rows: list[int | None]


class TableWriter:
    """One table format's output (a module under io/formats/ with a WRITER): how a run's staged units become
    one commit of the table, and how a retry finds that commit again (the run id in the commit)."""

    name: ClassVar[str]
    options: ClassVar[tuple[str, ...]] = ()  # output keys beyond parquet's it takes (partition_by, table, ...)
    named_in_catalog: ClassVar[bool] = False
    package: ClassVar[str]  # what to pip install

    def runs_folder(self, root: str) -> str:
        """Where runs are staged for the output at `root` (io/table_sink.py): inside it, where the table's
        readers look at nothing."""
        return layout.runs_path(root)

    def exists(self, spec) -> bool:
        """Does the table exist (with at least one commit)?"""
        raise NotImplementedError

    def published(self, spec, run_id: str) -> int | None:
        """The table version whose commit carries `run_id`, or None."""
        raise NotImplementedError

    def publish(self, spec, reader: pa.RecordBatchReader, run_id: str) -> int:
        """Commit every row of `reader` in one commit carrying `run_id` (output.mode append or overwrite; a
        mode of error creates the table); return the new version."""
        raise NotImplementedError

    def display(self, spec) -> str:
        """The table as a user names it."""
        return spec.path

    def scan(self, spec):
        """A polars LazyFrame over the table as it is now (the polars API's result for a LazyFrame)."""
        raise NotImplementedError


def by_version(open_at):
    """`open_at(url, options, version)` with each version opened once (a version never changes) and the
    latest (version None) asked anew each time."""
    opened = lru_cache(maxsize=8)(open_at)

    def at(url: str, options: str, version: int | None):
        return open_at(url, options, None) if version is None else opened(url, options, version)

    return at


def variable_lists(schema: pa.Schema) -> pa.Schema:
    """`schema` with fixed-size lists (embeddings) as lists: for tables whose type system has no fixed size
    (Delta, Iceberg), so that the files' types are the table's and every reader agrees."""
    def plain(t: pa.DataType) -> pa.DataType:
        if pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t):
            return pa.list_(pa.field("element", plain(t.value_type)))
        if pa.types.is_struct(t):
            return pa.struct([f.with_type(plain(f.type)) for f in t])
        return t

    return pa.schema([f.with_type(plain(f.type)) for f in schema], metadata=schema.metadata)


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)


def drop_rows(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if rows >= batch.num_rows:
            rows -= batch.num_rows
            continue
        yield batch.slice(rows) if rows else batch
        rows = 0


def rebatch(reader: Any, rows: int) -> Iterator[pa.RecordBatch]:
    """Regroup batches (CSV blocks sized in bytes, rows cut from row groups) into batches of `rows` rows."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in reader:
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows).combine_chunks().to_batches()[0]
            rest = table.slice(rows)
            pending, count = rest.combine_chunks().to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending).combine_chunks().to_batches()[0]
