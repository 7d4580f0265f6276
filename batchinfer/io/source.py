"""Sources: Parquet or CSV files, folders and globs on any fsspec filesystem, streamed as Arrow record batches.

A whole file is never read into memory: Parquet is read batch by batch, CSV block by block.
Each batch carries its position (file index, batch index) so output parts can be named and resumed.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from batchinfer.errors import InputError
from batchinfer.job import InputSpec

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv.gz")
_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class SourceBatch:
    file_index: int
    file: str
    batch_index: int
    batch: pa.RecordBatch


def _format_of(path: str, requested: str) -> str | None:
    if requested != "auto":
        return requested
    lower = path.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def _is_text_type(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_null(t)


class Source:
    """The files of one input spec, listed and checked up front."""

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        self.fs: fsspec.AbstractFileSystem | None = None
        self.files: list[str] = []
        self.formats: list[str] = []
        self._list()

    # -- listing -----------------------------------------------------------------------------------
    def _list(self) -> None:
        found: list[str] = []
        for url in self.spec.paths:
            try:
                fs, root = fsspec.core.url_to_fs(url, **self.spec.storage_options)
            except (ImportError, ValueError) as exc:
                raise InputError(f"input {url}: cannot open this location: {exc}") from None
            if self.fs is None:
                self.fs = fs
            elif type(fs) is not type(self.fs):
                raise InputError(f"input {url}: all input paths must be on one filesystem")
            if any(c in root for c in _GLOB_CHARS):
                matches = sorted(p for p in fs.glob(root) if fs.isfile(p))
                if not matches:
                    raise InputError(f"input {url}: the pattern matches no files")
            elif fs.isdir(root):
                matches = sorted(p for p in fs.find(root) if _format_of(p, self.spec.format)
                                 and not posixpath.basename(p).startswith((".", "_")))
                if not matches:
                    raise InputError(f"input folder {url} holds no Parquet or CSV files")
            elif fs.isfile(root):
                matches = [root]
            else:
                raise InputError(f"input {url} does not exist", hint="check input.path in the job file")
            found.extend(matches)
        for path in found:
            fmt = _format_of(path, self.spec.format)
            if fmt is None:
                raise InputError(f"input {path}: cannot tell the format from the name",
                                 hint="set input.format = 'parquet' or 'csv'")
            self.files.append(path)
            self.formats.append(fmt)

    # -- checks ------------------------------------------------------------------------------------
    def schema_of(self, index: int) -> pa.Schema:
        path, fmt = self.files[index], self.formats[index]
        try:
            if fmt == "parquet":
                with self.fs.open(path, "rb") as fh:
                    return pq.ParquetFile(fh).schema_arrow
            with self._open_csv(path, columns=None) as reader:
                return reader.schema
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"input {path} cannot be read as {fmt}: {exc}") from None

    def check(self, column: str, keep: list[str] | None) -> pa.Schema:
        """Check every file has the text column (as strings) and the kept columns; return the first schema."""
        first: pa.Schema | None = None
        for i, path in enumerate(self.files):
            schema = self.schema_of(i)
            if column not in schema.names:
                raise InputError(f"input {path} has no column {column!r}; its columns are: {', '.join(schema.names)}",
                                 hint="set input.column to one of them")
            if not _is_text_type(schema.field(column).type):
                raise InputError(f"input {path}: column {column!r} has type {schema.field(column).type}, "
                                 "not text", hint="input.column must name a string column")
            missing = [c for c in keep or [] if c not in schema.names]
            if missing:
                raise InputError(f"input {path} has no column(s) {', '.join(map(repr, missing))} named in "
                                 f"output.keep_columns; its columns are: {', '.join(schema.names)}")
            first = first or schema
        return first

    def total_rows(self) -> int | None:
        """Rows in all files when every file is Parquet (read from the footers), else None."""
        if any(f != "parquet" for f in self.formats):
            return None
        total = 0
        for path in self.files:
            with self.fs.open(path, "rb") as fh:
                total += pq.ParquetFile(fh).metadata.num_rows
        return total

    # -- reading -----------------------------------------------------------------------------------
    def _open_csv(self, path: str, columns: list[str] | None, text_column: str | None = None):
        csv = self.spec.csv
        fh = self.fs.open(path, "rb", compression="infer")
        try:
            return _ClosingCsvReader(fh, pacsv.open_csv(
                fh,
                read_options=pacsv.ReadOptions(block_size=1 << 20, encoding=csv.encoding,
                                               autogenerate_column_names=not csv.header),
                parse_options=pacsv.ParseOptions(delimiter=csv.delimiter, quote_char=csv.quote_char,
                                                 newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    include_columns=columns,
                    column_types={text_column: pa.string()} if text_column else None),
            ))
        except Exception:
            fh.close()
            raise

    def batches(self, columns: list[str], text_column: str) -> Iterator[SourceBatch]:
        """Yield record batches of `columns` from every file in order."""
        for i, (path, fmt) in enumerate(zip(self.files, self.formats)):
            try:
                if fmt == "parquet":
                    with self.fs.open(path, "rb") as fh:
                        pf = pq.ParquetFile(fh)
                        for j, batch in enumerate(pf.iter_batches(batch_size=self.spec.batch_rows, columns=columns)):
                            yield SourceBatch(i, path, j, batch)
                else:
                    with self._open_csv(path, columns, text_column) as reader:
                        for j, batch in enumerate(_rebatch(reader, self.spec.batch_rows)):
                            yield SourceBatch(i, path, j, batch)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError) as exc:
                raise InputError(f"input {path} ({fmt}) cannot be read: {exc}") from None


def _rebatch(reader: Any, rows: int) -> Iterator[pa.RecordBatch]:
    """CSV blocks are sized in bytes; regroup them into batches of `rows` rows."""
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


class _ClosingCsvReader:
    def __init__(self, fh: Any, reader: pacsv.CSVStreamingReader) -> None:
        self.fh, self.reader = fh, reader
        self.schema = reader.schema

    def __iter__(self):
        return iter(self.reader)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()
