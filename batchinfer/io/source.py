"""Sources: Parquet or CSV files, folders and globs on any fsspec filesystem, streamed as Arrow record batches.

A whole file is never read into memory: Parquet is read batch by batch, CSV block by block.
Each batch carries its position (file index, batch index) so output parts can be named and resumed.
"""

from __future__ import annotations

import logging
import posixpath
import re
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fsspec
from fsspec.compression import compr
from fsspec.core import get_compression
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from batchinfer import faults
from batchinfer.errors import InputError
from batchinfer.io import layout
from batchinfer.io.read_progress import ReadProgress
from batchinfer.io.retry import is_permission_error, is_storage_error, retrying
from batchinfer.io.schema import conform, duplicate_names, names_of, unify
from batchinfer.io.storage import check_bucket, open_fs, storage_errors as _storage_errors
from batchinfer.job import InputSpec
from batchinfer.media import medium

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv.gz")
_GLOB_CHARS = "*?["
_LEADING_ZERO = r"^[+-]?0\d"  # an id like 00042: read as an integer it would lose its zeros
log = logging.getLogger("batchinfer")
CSV_BLOCK = 1 << 20  # bytes per CSV block; Arrow infers a file's types from its first block


@dataclass(frozen=True)
class BadRow:
    """A CSV row that could not be parsed (e.g. ragged), skipped under on_error = skip or dead-letter."""

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
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
            or pa.types.is_null(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t))


class Source:
    """The files of one input spec, listed and checked up front."""

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        self.fs: fsspec.AbstractFileSystem | None = None
        self.files: list[str] = []
        self.formats: list[str] = []
        self._parquet_rows: list[int | None] | None = None
        self._info: list[dict] | None = None  # fs.info of each file, asked once (_infos)
        self.reads = ReadProgress()  # how far CSV files have been read (the progress bar's estimate)
        self.schema: pa.Schema | None = None  # the job's one schema, set by check()
        self.csv_types: dict[str, pa.DataType] = {}  # what CSV files read each column as, to fit it
        self._list()

    @classmethod
    def of_files(cls, spec: InputSpec, files: list[str], formats: list[str], schema: pa.Schema,
                 csv_types: dict[str, pa.DataType]) -> Source:
        """A source over files someone already listed and checked (a Ray worker, given them by the driver)."""
        source = cls.__new__(cls)
        source.spec, source.files, source.formats = spec, list(files), list(formats)
        source._parquet_rows = source._info = None
        source.reads = ReadProgress()
        source.schema, source.csv_types = schema, dict(csv_types)
        source.fs = open_fs(spec.paths[0], spec.storage_options)[0]
        return source

    # -- listing -----------------------------------------------------------------------------------
    def _list(self) -> None:
        found: list[str] = []
        for url in self.spec.paths:
            try:
                fs, root = open_fs(url, self.spec.storage_options)
            except (ImportError, ValueError, TypeError) as exc:
                raise InputError(f"input {url}: cannot open this location: {exc}") from None
            if self.fs is None:
                self.fs = fs
            elif type(fs) is not type(self.fs):
                raise InputError(f"input {url}: all input paths must be on one filesystem")
            with storage_errors(f"input {url}", fs):
                found.extend(self._expand(fs, url, root))
        for path in dict.fromkeys(found):  # a file two patterns match is read once
            fmt = _format_of(path, self.spec.format)
            if fmt is None:
                raise InputError(f"input {self.display(path)}: cannot tell the format from the name",
                                 hint="set input.format = 'parquet' or 'csv'")
            self.files.append(path)
            self.formats.append(fmt)

    def _expand(self, fs, url: str, root: str) -> list[str]:
        def call(fn, *args):
            return retrying(lambda: fn(*args), what=f"listing {url}")

        if any(c in root for c in _GLOB_CHARS):
            base = _glob_base(root)
            matches = sorted(p for p in call(fs.glob, root) if not _hidden(p, base) and call(fs.isfile, p))
            if not matches:
                check_bucket(fs, root, f"input {url}", InputError)
                raise InputError(f"input {url}: the pattern matches no files")
            return matches
        if call(fs.isdir, root):
            matches = sorted(p for p in call(fs.find, root) if _format_of(p, self.spec.format)
                             and not _hidden(p, root))
            if not matches:
                raise InputError(f"input folder {url} holds no Parquet or CSV files")
            return matches
        if call(fs.isfile, root):
            return [root]
        check_bucket(fs, root, f"input {url}", InputError)
        raise InputError(f"input {url} does not exist", hint="check input.path in the job file")

    def reads_under(self, fs, root: str) -> str | None:
        """The input path that would read files written under `root` on `fs` (an output there would be read
        back as input)."""
        if type(fs) is not type(self.fs):
            return None
        probe = f"{root}/{layout.part_name(layout.unit_name(0, 0))}"  # the first part an output there holds
        for given in self.spec.paths:
            pattern = fs._strip_protocol(given).rstrip("/")
            if any(c in pattern for c in _GLOB_CHARS):
                if _glob_regex(pattern).fullmatch(probe) and not _hidden(probe, _glob_base(pattern)):
                    return given
            elif root == pattern or root.startswith(pattern + "/"):
                return given
        return None

    def display(self, path: str) -> str:
        """A path as the user would write it (with its protocol, for object stores)."""
        return self.fs.unstrip_protocol(path) if self.fs is not None and "://" not in path \
            and self.fs.protocol not in ("file", ("file", "local")) else path

    # -- checks ------------------------------------------------------------------------------------
    def schema_of(self, index: int) -> pa.Schema:
        path, fmt = self.files[index], self.formats[index]
        with storage_errors(f"input {self.display(path)}", self.fs):
            return retrying(lambda: self._schema(path, fmt), what=f"reading {self.display(path)}")

    def _schema(self, path: str, fmt: str) -> pa.Schema:
        try:
            if fmt == "parquet":
                with self.fs.open(path, "rb") as fh:
                    return pq.ParquetFile(fh).schema_arrow
            return self._csv_probe(path, as_text=not self.spec.csv.infer_types)
        except InputError:
            raise
        except (pa.ArrowException, ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"input {self.display(path)} cannot be read as {fmt}: {exc}") from None

    def check(self, column: str | list[str], keep: list[str] | None, *, modality: str = "text") -> pa.Schema:
        """Check every file has the input column(s) (of a fitting type) and the kept columns; return the job's
        schema, unified over all files (see io/schema.py)."""
        inputs = names_of(column)
        first: pa.Schema | None = None
        found = []
        for i, path in enumerate(self.files):
            schema = self.schema_of(i)
            twice = duplicate_names(schema)
            if twice:
                raise InputError(f"input {self.display(path)} has more than one column named "
                                 f"{', '.join(map(repr, twice))}",
                                 hint="give every column its own name in the file (CSV: the header line)")
            absent = [c for c in inputs if c not in schema.names]
            if absent:
                raise InputError(f"input {path} has no column {', '.join(map(repr, absent))}; its columns are: "
                                 f"{', '.join(schema.names)}",
                                 hint="set input.column (or input.columns, input.template) to columns it has")
            fits = _is_text_type if modality == "text" else medium(modality).column_fits
            for column in (c for c in inputs if not fits(schema.field(c).type)):
                if modality != "text":
                    hint = medium(modality).column_hint
                elif self.formats[i] == "csv":
                    hint = ("its values look like numbers or dates, so their type was inferred: set "
                            "input.csv.infer_types = false to read every column as text")
                else:
                    hint = "input.column must name a string column: cast it to a string type in the file"
                raise InputError(f"input {path}: column {column!r} has type {schema.field(column).type}, "
                                 f"not {modality}", hint=hint)
            first = first or schema
            wanted = keep if keep is not None else first.names
            missing = [c for c in wanted if c not in schema.names]
            if missing:
                where = "named in output.keep_columns" if keep is not None else f"of {self.display(self.files[0])}"
                raise InputError(f"input {path} has no column(s) {', '.join(map(repr, missing))} {where}; "
                                 f"its columns are: {', '.join(schema.names)}",
                                 hint="give every input file the same columns, or list the ones to keep in "
                                      "output.keep_columns")
            found.append((self.display(path), self.formats[i], schema))
        columns = list(dict.fromkeys([*(keep if keep is not None else first.names), *inputs]))
        texts = inputs if modality == "text" else ()
        self.schema, as_text = unify(found, columns, skip=texts)
        self.csv_types = {f.name: pa.string() if f.name in as_text else f.type for f in self.schema
                           if f.name not in texts and not pa.types.is_null(f.type)}
        return self.schema

    def versions(self) -> list[tuple[str, int | None, str]]:
        """(path, size, version) of every file: what tells a resume whether a file changed since."""
        found = []
        for path, info in zip(self.files, self._infos()):
            version = (info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
                       or info.get("last_modified"))
            found.append((path, info.get("size"), str(version)))
        return found

    def _infos(self) -> list[dict]:
        """Each file's storage listing entry, asked once per source (one request per file on object stores)."""
        if self._info is None:
            self._info = [self.fs.info(path) for path in self.files]
        return self._info

    def total_rows(self) -> int | None:
        """Rows in all files when every file is Parquet (read from the footers), else None."""
        rows = self.parquet_rows()
        return None if None in rows else sum(rows)

    def rows_estimate(self) -> tuple[int, bool] | None:
        """(rows, exact): Parquet footers' rows plus CSV files' rows, exact once read, else estimated from the
        rows per byte read so far; None before the first CSV block is read."""
        return self.reads.estimate(self.parquet_rows(), self.sizes)

    def sizes(self) -> list[int | None]:
        """Bytes of each file as stored."""
        return [None if info.get("size") is None else int(info["size"]) for info in self._infos()]

    def parquet_rows(self) -> list[int | None]:
        """Rows of each Parquet file from its footer (read once per source); None for CSV."""
        if self._parquet_rows is None:
            rows: list[int | None] = []
            for path, fmt in zip(self.files, self.formats):
                if fmt != "parquet":
                    rows.append(None)
                    continue
                with storage_errors(f"input {self.display(path)}", self.fs), self.fs.open(path, "rb") as fh:
                    rows.append(pq.ParquetFile(fh).metadata.num_rows)
            self._parquet_rows = rows
        return self._parquet_rows

    # -- reading -----------------------------------------------------------------------------------
    def delimiter(self, path: str) -> str:
        """input.csv.delimiter, else a tab for .tsv files and a comma for the rest."""
        given = self.spec.csv.delimiter
        return given or ("\t" if path.lower().removesuffix(".gz").removesuffix(".bz2").removesuffix(".zst")
                         .endswith(".tsv") else ",")

    def _csv_options(self, path: str, columns: list[str] | None, types: dict[str, pa.DataType] | None,
                     on_invalid=None):
        csv = self.spec.csv
        nulls = dict(strings_can_be_null=True, quoted_strings_can_be_null=False, null_values=[""]) \
            if csv.empty_as_null else dict(strings_can_be_null=False)
        return dict(read_options=pacsv.ReadOptions(block_size=CSV_BLOCK, encoding=csv.encoding,
                                                   autogenerate_column_names=not csv.header),
                    parse_options=pacsv.ParseOptions(delimiter=self.delimiter(path), quote_char=csv.quote_char,
                                                     newlines_in_values=True, invalid_row_handler=on_invalid),
                    convert_options=pacsv.ConvertOptions(include_columns=columns, column_types=types or None,
                                                         **nulls))

    def _csv_probe(self, path: str, *, as_text: bool = False) -> pa.Schema:
        """The schema a full read infers (Arrow infers types from the first block), from the first block
        copied into Arrow's memory and read to its end before returning: Arrow's threads are left holding
        no Python object (one released by them while the interpreter exits aborts the process: exit 134)."""
        with self.fs.open(path, "rb", compression="infer") as fh:
            head = fh.read(CSV_BLOCK)
        options = self._csv_options(path, None, None)  # no Python row handler: Arrow's threads keep copies
        try:
            reader = pacsv.open_csv(pa.BufferReader(_native(head)), **options)
        except pa.ArrowInvalid as exc:
            if "columns, got" not in str(exc):
                raise
            head = self._without_ragged(head, path)
            reader = pacsv.open_csv(pa.BufferReader(_native(head)), **options)
        schema = reader.schema
        _drain(reader)
        try:
            schema.names
        except UnicodeDecodeError:
            raise InputError(f"input {self.display(path)}: its first line is not text: is it a CSV file?",
                             hint="check input.path, or set input.format for files whose name misleads") from None
        if as_text:
            return pa.schema([pa.field(n, pa.string()) for n in schema.names])
        twice = duplicate_names(schema)  # an input error, reported by check()
        zeros = self._leading_zeros(path, head, [f.name for f in schema if pa.types.is_integer(f.type)
                                                 and f.name not in twice])
        if zeros:
            log.info("input %s: column(s) %s read as text: values in the first block have leading zeros "
                     "(e.g. 00042)", self.display(path), ", ".join(map(repr, zeros)))
        return pa.schema([pa.field(f.name, pa.string()) if f.name in zeros else f for f in schema])

    def _leading_zeros(self, path: str, head: bytes, columns: list[str]) -> list[str]:
        """The integer columns of a probed block that hold a value with a leading zero (read again as text)."""
        if not columns:
            return []
        reader = pacsv.open_csv(pa.BufferReader(_native(head)),
                                **self._csv_options(path, columns, dict.fromkeys(columns, pa.string())))
        found: set[str] = set()
        try:
            for batch in reader:
                found.update(c for c in columns if c not in found
                             and pc.any(pc.match_substring_regex(batch.column(c), _LEADING_ZERO)).as_py())
        except (pa.ArrowException, ValueError):  # a cut or ragged last line: the rows before it decide
            pass
        finally:
            _drain(reader)
        return [c for c in columns if c in found]

    def _without_ragged(self, head: bytes, path: str) -> bytes:
        """The block without the lines of its ragged rows (judged when read, under input.on_error)."""
        import csv as pycsv

        lines = head.splitlines(keepends=True)
        text = head.decode("utf-8", "surrogateescape").splitlines(keepends=True)
        reader = pycsv.reader(text, delimiter=self.delimiter(path), quotechar=self.spec.csv.quote_char)
        keep, start, width = [], 0, None
        for row in reader:
            width = len(row) if width is None else width
            if len(row) == width:
                keep.extend(lines[start:reader.line_num])
            start = reader.line_num
        return b"".join(keep)

    def _string_types(self, path: str) -> dict[str, pa.DataType]:
        """infer_types = false: every column as text (the header names come from a probe)."""
        if self.spec.csv.infer_types:
            return {}
        return {name: pa.string() for name in self._csv_probe(path, as_text=True).names}

    def _open_csv(self, i: int, path: str, columns: list[str] | None, text_column: str | None = None,
                  bad_rows: list[BadRow] | None = None):
        types = self._string_types(path) | self.csv_types
        for name in names_of(text_column):  # undecodable text must fail one row, not the whole block
            types[name] = pa.binary()

        def on_invalid(row) -> str:
            bad_rows.append(BadRow(row.number, f"expected {row.expected_columns} columns, got {row.actual_columns}",
                                   row.text))
            return "skip"

        on_invalid.undecodable_is_ours = True  # see _quiet_undecodable_rows
        raw = self.fs.open(path, "rb")
        compression = get_compression(path, "infer")
        fh = _QuoteCounter(compr[compression](raw, mode="rb") if compression else raw, self.spec.csv.quote_char,
                           self.delimiter(path), raw)
        self.reads.opened(i, raw, lambda: fh.lines, header=self.spec.csv.header)
        try:
            return _ClosingCsvReader(fh, pacsv.open_csv(fh, **self._csv_options(
                path, columns, types, None if bad_rows is None else on_invalid)))
        except BaseException:
            fh.close()
            raise

    def batch_counts(self) -> list[int | None]:
        """Record batches (units) per file, from the Parquet footers; None for CSV (known only once read)."""
        return [None if rows is None else -(-rows // self.spec.batch_rows) for rows in self.parquet_rows()]

    def batches(self, columns: list[str], text_column: str | None, *, keep_bad_rows: bool = False,
                files: list[int] | None = None, first: int = 0, stop: int | None = None) -> Iterator[SourceBatch]:
        """Yield record batches of `columns` from every file (or the `files` given) in order.

        Batch j of a file holds its rows [j * batch_rows, (j + 1) * batch_rows): a unit of output. `first` and
        `stop` read only batches first..stop-1 of a Parquet file (the Ray executor's work items).
        With `keep_bad_rows`, unparseable CSV rows are skipped and reported on the batch that follows them;
        otherwise they stop the read with an InputError naming the file.
        """
        for i in range(len(self.files)) if files is None else files:
            path, fmt = self.files[i], self.formats[i]
            try:
                if fmt == "parquet":
                    yield from self._parquet_batches(i, path, columns, text_column, first, stop)
                else:
                    if first or stop is not None:
                        raise ValueError("CSV files are read whole")
                    yield from self._csv_batches(i, path, columns, text_column, keep_bad_rows)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError) as exc:
                if is_permission_error(exc) or is_storage_error(exc):
                    with storage_errors(f"input {self.display(path)}", self.fs):
                        raise
                typed = fmt == "csv" and "CSV conversion error" in str(exc) and self.spec.csv.infer_types
                raise InputError(f"input {self.display(path)} ({fmt}) cannot be read: {exc}",
                                 hint=("a column's type was inferred from the file's first rows and a later "
                                       "value does not fit it: set input.csv.infer_types = false to read every "
                                       "column as text; " if typed else "fix or remove the file; ")
                                 + "rows already written are kept (output.mode = 'resume' continues after the "
                                   "fix)") from None

    def _conform(self, batch: pa.RecordBatch, text_column: str | None) -> pa.RecordBatch:
        return batch if self.schema is None else conform(batch, self.schema, skip=text_column)

    def _parquet_batches(self, i: int, path: str, columns: list[str], text_column: str | None, first: int,
                         stop: int | None) -> Iterator[SourceBatch]:
        size = self.spec.batch_rows
        with self.fs.open(path, "rb") as fh:
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
                stream = _rebatch(_drop_rows(pf.iter_batches(batch_size=size, columns=columns, row_groups=groups),
                                             skip), size)
            for j, batch in enumerate(stream, start=first):
                if stop is not None and j >= stop:
                    return
                faults.hit("read")
                yield SourceBatch(i, path, j, self._conform(batch, text_column), j * size)

    def _csv_batches(self, i: int, path: str, columns: list[str], text_column: str | None,
                     keep_bad_rows: bool) -> Iterator[SourceBatch]:
        offset = j = reported = 0
        bad: list[BadRow] | None = [] if keep_bad_rows else None
        try:
            with self._open_csv(i, path, columns, text_column, bad) as reader:
                for j, batch in enumerate(_rebatch(reader, self.spec.batch_rows)):
                    reader.fh.check(path)
                    faults.hit("read")
                    found = tuple(bad or ())
                    if bad:
                        bad.clear()
                    yield SourceBatch(i, path, j, self._conform(batch, text_column), offset, found)
                    offset, reported, j = offset + batch.num_rows, reported + len(found), j + 1
                reader.fh.check(path)
                self.reads.finished(i, offset + reported + len(bad or ()))
                if bad:  # bad rows after the last good one: an empty batch carries them
                    empty = _empty_batch(self._read_schema(columns, text_column))
                    yield SourceBatch(i, path, j, self._conform(empty, text_column), offset, tuple(bad))
        except pa.ArrowInvalid as exc:
            if bad is None or "columns, got" not in str(exc):
                raise
            # a ragged row that is not UTF-8 never reaches our row handler (pyarrow cannot decode its text
            # to pass it on): the rest of the file is read by Python's csv module, rows and units unchanged
            yield from self._csv_batches_in_python(i, path, columns, text_column, offset, reported, j)

    def _read_schema(self, columns: list[str], text_column: str | None) -> pa.Schema:
        texts = names_of(text_column)
        return pa.schema([pa.field(c, pa.binary()) if c in texts else self.schema.field(c) for c in columns])

    def _csv_batches_in_python(self, i: int, path: str, columns: list[str], text_column: str | None,
                               skip_rows: int, skip_bad: int, index: int) -> Iterator[SourceBatch]:
        """The slow path for a file whose bad rows pyarrow cannot report: batches from `index` on, after
        `skip_rows` good and `skip_bad` bad rows already yielded."""
        import csv as pycsv
        import io

        schema = self._read_schema(columns, text_column)
        delimiter = self.delimiter(path)
        with self.fs.open(path, "rb", compression="infer") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
            lines: list[str] = []  # the physical lines of the row just read

            def tracked():
                for line in text:
                    lines.append(line)
                    yield line

            reader = pycsv.reader(tracked(), delimiter=delimiter, quotechar=self.spec.csv.quote_char)
            names = next(reader, [])
            first, lines[:] = "".join(lines), []
            rows: list[str] = []  # good rows' raw text, parsed by pyarrow as the fast path parses them
            found: list[BadRow] = []
            good = bad_seen = 0
            offset = skip_rows
            if not self.spec.csv.header:  # the first line is a row: columns are named as pyarrow names them
                names, good = [f"f{k}" for k in range(len(names))], 1
                rows = [first] if skip_rows < 1 else []
            for row in reader:
                line, lines[:] = "".join(lines), []
                if not row:  # a blank line, which pyarrow skips
                    continue
                if len(row) != len(names):
                    bad_seen += 1
                    if bad_seen > skip_bad:
                        found.append(BadRow(reader.line_num, f"expected {len(names)} columns, got {len(row)}",
                                            delimiter.join(row).encode("utf-8", "surrogateescape")
                                            .decode("utf-8", "replace")))
                    continue
                good += 1
                if good <= skip_rows:
                    continue
                rows.append(line)
                if len(rows) == self.spec.batch_rows:
                    yield SourceBatch(i, path, index, self._parse_rows(path, names, rows, schema), offset,
                                      tuple(found))
                    index, offset, rows, found = index + 1, offset + len(rows), [], []
            self.reads.finished(i, good + bad_seen)
            if rows or found:
                yield SourceBatch(i, path, index, self._parse_rows(path, names, rows, schema), offset, tuple(found))

    def _parse_rows(self, path: str, names: list[str], rows: list[str], schema: pa.Schema) -> pa.RecordBatch:
        """Good rows' raw text (surrogate-escaped) as a batch of `schema`, read with the fast path's options
        (so empty fields, quoted or not, give the same values and nulls)."""
        if not rows:
            return _empty_batch(schema)
        data = "".join(rows).encode("utf-8", "surrogateescape")
        options = self._csv_options(path, schema.names, {f.name: f.type for f in schema})
        options["read_options"] = pacsv.ReadOptions(column_names=names)
        table = pacsv.read_csv(pa.BufferReader(_native(data)), **options)
        return pa.RecordBatch.from_arrays([table.column(c).combine_chunks() for c in schema.names], schema=schema)


def storage_errors(what: str, fs=None):
    """Object store failures as InputErrors naming the URL and endpoint (never the credentials): io/storage.py."""
    return _storage_errors(what, InputError, fs=fs)


def _hidden(path: str, root: str) -> bool:
    """Below `root`, a name starting with '_' or '.' is not input: batchinfer's own `_SUCCESS`,
    `_batchinfer/`, `_dead_letter/` and temporary files, Spark's `_SUCCESS`, hidden files."""
    rest = path[len(root):] if path.startswith(root) else posixpath.basename(path)
    return any(part.startswith(("_", ".")) for part in rest.split("/") if part)


def _glob_base(pattern: str) -> str:
    """The folder part of a glob before its first wildcard."""
    head = pattern[:min(pattern.find(c) for c in _GLOB_CHARS if c in pattern)]
    return head.rsplit("/", 1)[0] if "/" in head else ""


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob as fsspec reads it: `**` crosses folders, `*` and `?` do not."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if pattern.startswith("/", i):
                out[-1], i = "(?:.*/)?", i + 1
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            out.append("[" + pattern[i + 1:end].replace("!", "^", 1) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _count(data: bytes, patterns: tuple[bytes, ...]) -> int:
    return sum(data.count(p) for p in patterns)


def _quiet_undecodable_rows(hook=sys.unraisablehook):
    """pyarrow reports a ragged row that is not UTF-8 as an ignored exception (a traceback on stderr) before
    failing the read; that failure is handled (`_csv_batches_in_python`), so the traceback is noise."""
    def quiet(args) -> None:
        if not (isinstance(args.exc_value, UnicodeDecodeError)
                and getattr(args.object, "undecodable_is_ours", False)):
            hook(args)
    return quiet


sys.unraisablehook = _quiet_undecodable_rows()


def _native(data: bytes) -> pa.Buffer:
    """A copy in Arrow's own memory (a buffer over Python bytes needs the interpreter to be freed)."""
    buffer = pa.allocate_buffer(len(data))
    pa.FixedSizeBufferWriter(buffer).write(data)
    return buffer


def _drain(reader) -> None:
    """Read a CSV reader to its end, so that Arrow's threads are done with it."""
    try:
        while reader.read_next_batch() is not None:
            pass
    except (StopIteration, pa.ArrowException, ValueError, OSError):
        pass
    reader.close()


def _empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=schema)


def _drop_rows(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        if rows >= batch.num_rows:
            rows -= batch.num_rows
            continue
        yield batch.slice(rows) if rows else batch
        rows = 0


def _rebatch(reader: Any, rows: int) -> Iterator[pa.RecordBatch]:
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


class _QuoteCounter:
    """Counts quoted fields as pyarrow reads: one opened (a quote at the start of a field) and never closed
    (a quote before a delimiter, a line end or the end of the file) means the rows after it would be
    swallowed into that one field, which pyarrow does silently; we stop instead. A quote inside an unquoted
    field (`5" screen`) is text, as pyarrow reads it.
    """

    def __init__(self, fh: Any, quote: str, delimiter: str, raw: Any = None) -> None:
        self._fh = fh
        self._raw = raw  # the storage file under a decompressing `fh` (which does not close it)
        q, d = quote.encode(), delimiter.encode()
        self._opens, self._closes = (d + q, b"\n" + q), (q + d, q + b"\n", q + b"\r")
        self._escaped = (d + q + q, b"\n" + q + q)  # an empty field, or a line starting with "" inside one
        self._quote = q
        self._last = b"\n"  # a quote at the very start opens a field
        self.opened = self.closed_fields = 0
        self.lines = 0  # line ends read (the progress bar's row estimate)
        self.eof = False
        self._lock = threading.Lock()  # Arrow reads ahead in its own thread; close waits for that read
        self._closed = False

    def read(self, size: int = -1) -> bytes:
        with self._lock:
            if self._closed:
                return b""
            data = self._fh.read(size)
        if data:
            joined = self._last + data  # a pattern may span two reads; those inside _last were counted
            self.opened += _count(joined, self._opens) - _count(self._last, self._opens)
            self.opened -= _count(joined, self._escaped) - _count(self._last, self._escaped)
            self.closed_fields += _count(joined, self._closes) - _count(self._last, self._closes)
            self._last = joined[-2:]
            self.lines += data.count(b"\n")
        if size is None or size < 0 or len(data) < size:
            if not self.eof and self._last.endswith(self._quote):
                self.closed_fields += 1  # a quote at the end of the file closes its field
            self.eof = True
        return data

    def check(self, path: str) -> None:
        if self.eof and self.opened > self.closed_fields:
            raise InputError(f"input {path}: a quoted field is never closed (a {self._quote.decode()!r} opens a field and "
                             "no closing one follows); the rows after it would merge into one value",
                             hint="fix the quoting in the file, or set input.csv.quote_char")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._fh.close()
            if self._raw is not None and self._raw is not self._fh:
                self._raw.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


class _ClosingCsvReader:
    def __init__(self, fh: Any, reader: pacsv.CSVStreamingReader) -> None:
        self.fh, self.reader = fh, reader
        self.schema = reader.schema

    def __iter__(self):
        return iter(self.reader)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        """Stop Arrow's read-ahead and wait until it has let go of every block it read from our file."""
        self.fh.close()  # from now on reads see the end of the file
        _drain(self.reader)
