"""CSV (and TSV, compressed or not): read block by block by Arrow, with column types inferred from a file's
first block (or every column as text: input.csv.infer_types = false). Ragged rows are bad rows; a quote that
opens a field and never closes stops the read (pyarrow would silently merge the rows after it).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from fsspec.compression import compr
from fsspec.core import get_compression

from batchinfer import faults
from batchinfer.errors import InputError
from batchinfer.io.formats.base import BadRow, FileFormat, SourceBatch, empty_batch, rebatch
from batchinfer.io.schema import duplicate_names, names_of

log = logging.getLogger("batchinfer")
CSV_BLOCK = 1 << 20  # bytes per CSV block; Arrow infers a file's types from its first block
_LEADING_ZERO = r"^[+-]?0\d"  # an id like 00042: read as an integer it would lose its zeros


class CsvFormat(FileFormat):
    name = "csv"
    suffixes = (".csv", ".tsv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv.gz")
    infers_types = True
    type_hint = ("its values look like numbers or dates, so their type was inferred: set "
                 "input.csv.infer_types = false to read every column as text")

    def schema(self, source, path: str) -> pa.Schema:
        return self._csv_probe(source, path, as_text=not source.spec.csv.infer_types)

    def batches(self, source, i: int, path: str, columns: list[str], text_column: str | None, *,
                keep_bad_rows: bool, first: int = 0, stop: int | None = None) -> Iterator[SourceBatch]:
        if first or stop is not None:
            raise ValueError("CSV files are read whole")
        return self._csv_batches(source, i, path, columns, text_column, keep_bad_rows)

    def read_hint(self, source, error: Exception) -> str:
        if "CSV conversion error" in str(error) and source.spec.csv.infer_types:
            return ("a column's type was inferred from the file's first rows and a later value does not fit it: "
                    "set input.csv.infer_types = false to read every column as text; ")
        return super().read_hint(source, error)

    def delimiter(self, source, path: str) -> str:
        """input.csv.delimiter, else a tab for .tsv files and a comma for the rest."""
        given = source.spec.csv.delimiter
        return given or ("\t" if path.lower().removesuffix(".gz").removesuffix(".bz2").removesuffix(".zst")
                         .endswith(".tsv") else ",")

    def _csv_options(self, source, path: str, columns: list[str] | None, types: dict[str, pa.DataType] | None,
                     on_invalid=None):
        csv = source.spec.csv
        nulls = dict(strings_can_be_null=True, quoted_strings_can_be_null=False, null_values=[""]) \
            if csv.empty_as_null else dict(strings_can_be_null=False)
        return dict(read_options=pacsv.ReadOptions(block_size=CSV_BLOCK, encoding=csv.encoding,
                                                   autogenerate_column_names=not csv.header),
                    parse_options=pacsv.ParseOptions(delimiter=self.delimiter(source, path), quote_char=csv.quote_char,
                                                     newlines_in_values=True, invalid_row_handler=on_invalid),
                    convert_options=pacsv.ConvertOptions(include_columns=columns, column_types=types or None,
                                                         **nulls))

    def _csv_probe(self, source, path: str, *, as_text: bool = False) -> pa.Schema:
        """The schema a full read infers (Arrow infers types from the first block), from the first block
        copied into Arrow's memory and read to its end before returning: Arrow's threads are left holding
        no Python object (one released by them while the interpreter exits aborts the process: exit 134)."""
        with source.fs.open(path, "rb", compression="infer") as fh:
            head = fh.read(CSV_BLOCK)
        options = self._csv_options(source, path, None, None)  # no Python row handler: Arrow's threads keep copies
        try:
            reader = pacsv.open_csv(pa.BufferReader(native(head)), **options)
        except pa.ArrowInvalid as exc:
            if "columns, got" not in str(exc):
                raise
            head = self._without_ragged(source, head, path)
            reader = pacsv.open_csv(pa.BufferReader(native(head)), **options)
        schema = reader.schema
        _drain(reader)
        try:
            schema.names
        except UnicodeDecodeError:
            raise InputError(f"input {source.display(path)}: its first line is not text: is it a CSV file?",
                             hint="check input.path, or set input.format for files whose name misleads") from None
        if as_text:
            return pa.schema([pa.field(n, pa.string()) for n in schema.names])
        twice = duplicate_names(schema)  # an input error, reported by check()
        zeros = self._leading_zeros(source, path, head, [f.name for f in schema if pa.types.is_integer(f.type)
                                                 and f.name not in twice])
        if zeros:
            log.info("input %s: column(s) %s read as text: values in the first block have leading zeros "
                     "(e.g. 00042)", source.display(path), ", ".join(map(repr, zeros)))
        return pa.schema([pa.field(f.name, pa.string()) if f.name in zeros else f for f in schema])

    def _leading_zeros(self, source, path: str, head: bytes, columns: list[str]) -> list[str]:
        """The integer columns of a probed block that hold a value with a leading zero (read again as text)."""
        if not columns:
            return []
        reader = pacsv.open_csv(pa.BufferReader(native(head)),
                                **self._csv_options(source, path, columns, dict.fromkeys(columns, pa.string())))
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

    def _without_ragged(self, source, head: bytes, path: str) -> bytes:
        """The block without the lines of its ragged rows (judged when read, under input.on_error)."""
        import csv as pycsv

        lines = head.splitlines(keepends=True)
        text = head.decode("utf-8", "surrogateescape").splitlines(keepends=True)
        reader = pycsv.reader(text, delimiter=self.delimiter(source, path), quotechar=source.spec.csv.quote_char)
        keep, start, width = [], 0, None
        for row in reader:
            width = len(row) if width is None else width
            if len(row) == width:
                keep.extend(lines[start:reader.line_num])
            start = reader.line_num
        return b"".join(keep)

    def _string_types(self, source, path: str) -> dict[str, pa.DataType]:
        """infer_types = false: every column as text (the header names come from a probe)."""
        if source.spec.csv.infer_types:
            return {}
        return {name: pa.string() for name in self._csv_probe(source, path, as_text=True).names}

    def _open_csv(self, source, i: int, path: str, columns: list[str] | None, text_column: str | None = None,
                  bad_rows: list[BadRow] | None = None):
        types = self._string_types(source, path) | source.read_types
        for name in names_of(text_column):  # undecodable text must fail one row, not the whole block
            types[name] = pa.binary()

        def on_invalid(row) -> str:
            bad_rows.append(BadRow(row.number, f"expected {row.expected_columns} columns, got {row.actual_columns}",
                                   row.text))
            return "skip"

        on_invalid.undecodable_is_ours = True  # see _quiet_undecodable_rows
        raw = source.fs.open(path, "rb")
        compression = get_compression(path, "infer")
        fh = _QuoteCounter(compr[compression](raw, mode="rb") if compression else raw, source.spec.csv.quote_char,
                           self.delimiter(source, path), raw)
        source.reads.opened(i, raw, lambda: fh.lines, header=source.spec.csv.header)
        try:
            return _ClosingCsvReader(fh, pacsv.open_csv(fh, **self._csv_options(source, 
                path, columns, types, None if bad_rows is None else on_invalid)))
        except BaseException:
            fh.close()
            raise

    def _csv_batches(self, source, i: int, path: str, columns: list[str], text_column: str | None,
                     keep_bad_rows: bool) -> Iterator[SourceBatch]:
        offset = j = reported = 0
        bad: list[BadRow] | None = [] if keep_bad_rows else None
        try:
            with self._open_csv(source, i, path, columns, text_column, bad) as reader:
                for j, batch in enumerate(rebatch(reader, source.spec.batch_rows)):
                    reader.fh.check(path)
                    faults.hit("read")
                    found = tuple(bad or ())
                    if bad:
                        bad.clear()
                    yield SourceBatch(i, path, j, source.conform_batch(batch, text_column), offset, found)
                    offset, reported, j = offset + batch.num_rows, reported + len(found), j + 1
                reader.fh.check(path)
                source.reads.finished(i, offset + reported + len(bad or ()))
                if bad:  # bad rows after the last good one: an empty batch carries them
                    empty = empty_batch(source.read_schema(columns, text_column))
                    yield SourceBatch(i, path, j, source.conform_batch(empty, text_column), offset, tuple(bad))
        except pa.ArrowInvalid as exc:
            if bad is None or "columns, got" not in str(exc):
                raise
            # a ragged row that is not UTF-8 never reaches our row handler (pyarrow cannot decode its text
            # to pass it on): the rest of the file is read by Python's csv module, rows and units unchanged
            yield from self._csv_batches_in_python(source, i, path, columns, text_column, offset, reported, j)

    def _csv_batches_in_python(self, source, i: int, path: str, columns: list[str], text_column: str | None,
                               skip_rows: int, skip_bad: int, index: int) -> Iterator[SourceBatch]:
        """The slow path for a file whose bad rows pyarrow cannot report: batches from `index` on, after
        `skip_rows` good and `skip_bad` bad rows already yielded."""
        import csv as pycsv
        import io

        schema = source.read_schema(columns, text_column)
        delimiter = self.delimiter(source, path)
        with source.fs.open(path, "rb", compression="infer") as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")
            lines: list[str] = []  # the physical lines of the row just read

            def tracked():
                for line in text:
                    lines.append(line)
                    yield line

            reader = pycsv.reader(tracked(), delimiter=delimiter, quotechar=source.spec.csv.quote_char)
            names = next(reader, [])
            first, lines[:] = "".join(lines), []
            rows: list[str] = []  # good rows' raw text, parsed by pyarrow as the fast path parses them
            found: list[BadRow] = []
            good = bad_seen = 0
            offset = skip_rows
            if not source.spec.csv.header:  # the first line is a row: columns are named as pyarrow names them
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
                if len(rows) == source.spec.batch_rows:
                    yield SourceBatch(i, path, index, self._parse_rows(source, path, names, rows, schema), offset,
                                      tuple(found))
                    index, offset, rows, found = index + 1, offset + len(rows), [], []
            source.reads.finished(i, good + bad_seen)
            if rows or found:
                yield SourceBatch(i, path, index, self._parse_rows(source, path, names, rows, schema), offset, tuple(found))

    def _parse_rows(self, source, path: str, names: list[str], rows: list[str], schema: pa.Schema) -> pa.RecordBatch:
        """Good rows' raw text (surrogate-escaped) as a batch of `schema`, read with the fast path's options
        (so empty fields, quoted or not, give the same values and nulls)."""
        if not rows:
            return empty_batch(schema)
        data = "".join(rows).encode("utf-8", "surrogateescape")
        options = self._csv_options(source, path, schema.names, {f.name: f.type for f in schema})
        options["read_options"] = pacsv.ReadOptions(column_names=names)
        table = pacsv.read_csv(pa.BufferReader(native(data)), **options)
        return pa.RecordBatch.from_arrays([table.column(c).combine_chunks() for c in schema.names], schema=schema)


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


def native(data: bytes) -> pa.Buffer:
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


FORMAT = CsvFormat()
