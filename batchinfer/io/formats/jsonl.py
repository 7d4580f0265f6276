"""JSON Lines (`.jsonl`, `.ndjson`; gzip, bz2 or zstd compressed too): one JSON object per line, streamed line
by line. A file's column types are inferred from the objects of its first block (a field whose values mix
types is read as text: non-string values as their JSON text); a field a line leaves out is null. A line that
is not JSON, not a JSON object or not UTF-8, or whose value does not fit its column's type, is a bad row
naming the file and line (under input.on_error; with "fail" the read stops there). Blank lines are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from fsspec.compression import compr
from fsspec.core import get_compression

from batchinfer import faults
from batchinfer.errors import InputError
from batchinfer.io.formats.base import BadRow, FileFormat, SourceBatch, empty_batch
from batchinfer.io.schema import is_text_type

JSON_BLOCK = 1 << 20  # bytes of a file's start its column types are inferred from


class JsonLinesFormat(FileFormat):
    name = "jsonl"
    suffixes = tuple(f"{stem}{zipped}" for stem in (".jsonl", ".ndjson") for zipped in ("", ".gz", ".bz2", ".zst"))
    infers_types = True
    type_hint = "its values are JSON numbers, booleans or objects, not strings: write them as JSON strings"

    def schema(self, source, path: str) -> pa.Schema:
        with source.fs.open(path, "rb", compression="infer") as fh:
            head = fh.read(JSON_BLOCK)
        lines = head.splitlines()
        if len(head) == JSON_BLOCK and lines:
            lines.pop()  # cut by the block's end
        objects = [o for o in (_object(line) for line in lines) if isinstance(o, dict)]
        if not objects and any(line.strip() for line in lines):
            raise InputError(f"input {source.display(path)}: no line of its first {JSON_BLOCK >> 20} MB is a JSON "
                             "object: is it a JSON Lines file?",
                             hint="one JSON object per line; check input.path, or set input.format")
        names = list(dict.fromkeys(key for o in objects for key in o))
        return pa.schema([pa.field(name, _inferred([o.get(name) for o in objects])) for name in names])

    def batches(self, source, i: int, path: str, columns: list[str], text_column: str | None, *,
                keep_bad_rows: bool, first: int = 0, stop: int | None = None) -> Iterator[SourceBatch]:
        if first or stop is not None:
            raise ValueError("JSON Lines files are read whole")
        schema = source.read_schema(columns, text_column)
        texts = {f.name for f in schema if is_text_type(f.type)}  # they take a non-string value as its JSON text
        size, where = source.spec.batch_rows, source.display(path)
        rows: list[dict] = []
        lines: list[int] = []  # each row's line number
        bad: list[BadRow] = []
        index = offset = bad_lines = 0
        seen = [0]  # lines read (the progress estimate)
        raw = source.fs.open(path, "rb")
        compression = get_compression(path, "infer")
        with raw, (compr[compression](raw, mode="rb") if compression else raw) as fh:
            source.reads.opened(i, raw, lambda: seen[0], header=False)
            for number, line in enumerate(_lines(fh), start=1):
                seen[0] = number
                if not line.strip():
                    continue
                value, why = _parsed(line)
                if why is None:
                    rows.append(value)
                    lines.append(number)
                else:
                    self._bad(bad, keep_bad_rows, where, number, why, line)
                if len(rows) == size:
                    batch = self._batch(rows, lines, schema, texts, bad, keep_bad_rows, where)
                    faults.hit("read")
                    yield SourceBatch(i, path, index, source.conform_batch(batch, text_column), offset, tuple(bad))
                    index, offset, bad_lines = index + 1, offset + batch.num_rows, bad_lines + len(bad)
                    rows, lines, bad = [], [], []
            if rows or bad or index == 0:  # the last rows; bad lines after the last good one; an empty file
                batch = self._batch(rows, lines, schema, texts, bad, keep_bad_rows, where) if rows \
                    else empty_batch(schema)
                faults.hit("read")
                yield SourceBatch(i, path, index, source.conform_batch(batch, text_column), offset, tuple(bad))
                offset, bad_lines = offset + batch.num_rows, bad_lines + len(bad)
            source.reads.finished(i, offset + bad_lines)

    @staticmethod
    def _bad(bad: list[BadRow], keep: bool, where: str, number: int, why: str, line: bytes) -> None:
        if not keep:
            raise InputError(f"input {where}: line {number}: {why}",
                             hint="fix the line, or set input.on_error = 'skip' or 'dead-letter' to set bad lines "
                                  "aside; rows already written are kept (output.mode = 'resume' continues)")
        bad.append(BadRow(number, why, line.decode("utf-8", "replace").rstrip("\r\n")))

    def _batch(self, rows: list[dict], lines: list[int], schema: pa.Schema, texts: set[str], bad: list[BadRow],
               keep: bool, where: str) -> pa.RecordBatch:
        """The rows as a batch of `schema`; a row whose value does not fit its column is a bad row."""
        while True:
            try:
                arrays = [pa.array([_cell(r.get(f.name), f.name in texts) for r in rows], type=f.type)
                          for f in schema]
                return pa.RecordBatch.from_arrays(arrays, schema=schema)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                at, field = _misfit(rows, schema, texts)
                why = (f"{field.name!r} is {json.dumps(rows[at].get(field.name))[:80]}, which does not fit the "
                       f"column's type {field.type} (inferred from the first lines)")
                self._bad(bad, keep, where, lines[at], why, json.dumps(rows[at]).encode())
                del rows[at], lines[at]
                bad.sort(key=lambda b: b.line or 0)


def _lines(fh, block: int = 1 << 20) -> Iterator[bytes]:
    """The file's lines, read in blocks (a decompressing stream need not read lines itself)."""
    rest = b""
    while True:
        data = fh.read(block)
        if not data:
            break
        parts = (rest + data).split(b"\n")
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def _object(line: bytes) -> Any:
    try:
        return json.loads(line.decode("utf-8-sig"))
    except ValueError:
        return None


def _parsed(line: bytes) -> tuple[dict | None, str | None]:
    """(the line's object, None), or (None, why it is not one)."""
    try:
        text = line.decode("utf-8-sig")  # a byte order mark (files saved on Windows) is not part of the line
    except UnicodeDecodeError:
        return None, "the line is not UTF-8 text"
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    if not isinstance(value, dict):
        return None, f"a line must be a JSON object, not {type(value).__name__ if value is not None else 'null'}"
    return value, None


def _inferred(values: list[Any]) -> pa.DataType:
    """The type of a field's values (text where they mix types; null where every one is null)."""
    try:
        return pa.array(values).type
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        return pa.string()


def _cell(value: Any, text: bool) -> Any:
    """A value for its column: a text column takes a non-string value as its JSON text."""
    if text and value is not None and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return value


def _misfit(rows: list[dict], schema: pa.Schema, texts: set[str]) -> tuple[int, pa.Field]:
    """The first row with a value that does not fit its column, and the column."""
    for at, row in enumerate(rows):
        for f in schema:
            try:
                pa.array([_cell(row.get(f.name), f.name in texts)], type=f.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
                return at, f
    raise AssertionError("a batch failed to convert but no row fails alone")


FORMAT = JsonLinesFormat()
