"""Sources: files, folders and globs on any fsspec filesystem in any input format (io/formats/: Parquet, CSV,
JSON Lines), or one table (Delta Lake, Iceberg, Lance) at one version, streamed as Arrow record batches.

A whole file is never read into memory: each format reads batch by batch (Parquet), block by block (CSV) or
line by line (JSON Lines). Each batch carries its position (file index, batch index) so output parts can be
named and resumed.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterator

import fsspec
import pyarrow as pa

from batchinfer.errors import InputError
from batchinfer.io import layout
from batchinfer.io.formats import (BadRow, SourceBatch, TableListing, file_format, format_names, format_of,
                                   table_format_at)
from batchinfer.io.read_progress import ReadProgress
from batchinfer.io.retry import is_permission_error, is_storage_error, retrying
from batchinfer.io.schema import conform, duplicate_names, is_text_type, names_of, unify
from batchinfer.io.storage import check_bucket, open_fs, storage_errors as _storage_errors
from batchinfer.job import InputSpec
from batchinfer.media import medium

_GLOB_CHARS = "*?["
_FILES = type("Files", (), {"table_options": ()})  # what plain files take of the table options: none
log = logging.getLogger("batchinfer")
__all__ = ["BadRow", "Source", "SourceBatch"]


class Source:
    """The files of one input spec (or the pieces of one table), listed and checked up front.

    `pin`: the version of a table input to read when input.version is not set (a function giving it, or
    None): what an interrupted run of this job read, so that its retry reads exactly that again.
    """

    def __init__(self, spec: InputSpec, *, pin=None) -> None:
        self.spec = spec
        self._pin = pin
        self.table: TableListing | None = None  # a table input's pieces at the version read
        self.fs: fsspec.AbstractFileSystem | None = None
        self.files: list[str] = []
        self.formats: list[str] = []
        self._known_rows: list[int | None] | None = None
        self._info: list[dict] | None = None  # fs.info of each file, asked once (_infos)
        self.reads = ReadProgress()  # how far files without a row count have been read (the progress estimate)
        self.schema: pa.Schema | None = None  # the job's one schema, set by check()
        # what files whose types are inferred (CSV, JSON Lines) read each column as, to fit the job's schema
        self.read_types: dict[str, pa.DataType] = {}
        self._list()

    @classmethod
    def of_files(cls, spec: InputSpec, files: list[str], formats: list[str], schema: pa.Schema,
                 read_types: dict[str, pa.DataType]) -> Source:
        """A source over files someone already listed and checked (a Ray worker, given them by the driver)."""
        source = cls.__new__(cls)
        source.spec, source.files, source.formats = spec, list(files), list(formats)
        source._known_rows = source._info = source._pin = None
        source.table = None
        source.reads = ReadProgress()
        source.schema, source.read_types = schema, dict(read_types)
        source.fs = open_fs(spec.paths[0], spec.storage_options)[0] if spec.paths else None
        return source

    @classmethod
    def of_table(cls, spec: InputSpec, table: TableListing, formats: list[str], schema: pa.Schema,
                 read_types: dict[str, pa.DataType]) -> Source:
        """A source over a table version someone already listed and checked (a Ray worker)."""
        source = cls.of_files(spec, table.pieces, formats, schema, read_types)
        source.table, source._known_rows = table, list(table.rows)
        return source

    @property
    def table_version(self) -> int | None:
        """The version of the table read (None: files)."""
        return None if self.table is None else self.table.version

    def pin(self) -> int | None:
        """The version to read when input.version is not set: an interrupted run's, else None (the latest)."""
        return self._pin() if callable(self._pin) else self._pin

    # -- listing -----------------------------------------------------------------------------------
    def _list(self) -> None:
        fmt = self._table_format()
        wrong = self.spec.table_keys_not_of(file_format(fmt) if fmt else _FILES)
        if wrong:
            raise InputError(f"input {self.spec.paths[0]}: input.{wrong[0]} is an option of a table input, and this "
                             f"is {'a ' + fmt + ' table' if fmt else 'not a table'}",
                             hint="remove it, or point input.path at a table's folder")
        if fmt is not None:
            url = self.spec.paths[0] if self.spec.paths else None
            with storage_errors(f"input {url or self.spec.table}", self.fs):
                self.table = file_format(fmt).list_table(self, url)
            if not self.table.pieces:
                raise InputError(f"input {url or self.spec.table}: the {fmt} table holds no data at version "
                                 f"{self.table.version}" + (" within the input's filter" if self.spec.partition_filter
                                                             or self.spec.row_filter else ""),
                                 hint="check input.version and the filter, or point input.path at a table with rows")
            self.files, self.formats = list(self.table.pieces), [fmt] * len(self.table.pieces)
            self._known_rows = list(self.table.rows)
            return
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
            fmt = format_of(path, self.spec.format)
            if fmt is None:
                raise InputError(f"input {self.display(path)}: cannot tell the format from the name",
                                 hint=f"set input.format to one of {', '.join(map(repr, format_names()))}")
            self.files.append(path)
            self.formats.append(fmt)

    def _table_format(self) -> str | None:
        """The table format the input is (input.format, or a single folder that holds a table), else None."""
        if self.spec.format != "auto":
            fmt = file_format(self.spec.format)
            if not fmt.is_table:
                return None
            if self.spec.paths:
                self._open_one(fmt.name)
            return fmt.name
        if len(self.spec.paths) != 1 or any(c in self.spec.paths[0] for c in _GLOB_CHARS):
            return None
        fs, root = self._open_one("auto")
        with storage_errors(f"input {self.spec.paths[0]}", fs):
            return table_format_at(fs, root)

    def _open_one(self, fmt: str):
        url = self.spec.paths[0]
        if len(self.spec.paths) > 1:
            raise InputError(f"input.format = {fmt!r} reads one table: give one input.path, not "
                             f"{len(self.spec.paths)}")
        try:
            self.fs, root = open_fs(url, self.spec.storage_options)
        except (ImportError, ValueError, TypeError) as exc:
            raise InputError(f"input {url}: cannot open this location: {exc}") from None
        return self.fs, root.rstrip("/")

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
            matches = sorted(p for p in call(fs.find, root) if format_of(p, self.spec.format)
                             and not _hidden(p, root))
            if not matches:
                raise InputError(f"input folder {url} holds no input files ({', '.join(format_names())})")
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
            return file_format(fmt).schema(self, path)
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
            fits = is_text_type if modality == "text" else medium(modality).column_fits
            for column in (c for c in inputs if not fits(schema.field(c).type)):
                hint = medium(modality).column_hint if modality != "text" else file_format(self.formats[i]).type_hint
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
            found.append((self.display(path), file_format(self.formats[i]).infers_types, schema))
        columns = list(dict.fromkeys([*(keep if keep is not None else first.names), *inputs]))
        texts = inputs if modality == "text" else ()
        self.schema, as_text = unify(found, columns, skip=texts)
        self.read_types = {f.name: pa.string() if f.name in as_text else f.type for f in self.schema
                           if f.name not in texts and not pa.types.is_null(f.type)}
        return self.schema

    def versions(self) -> list[tuple[str, int | None, str]]:
        """(path, size, version) of every file: what tells a resume whether a file changed since. A table's
        pieces never change (the table's version is the plan's `table`)."""
        if self.table is not None:
            return [(piece, size, "") for piece, size in zip(self.table.pieces, self.table.sizes)]
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
        """Rows in all files when every file's format knows them (Parquet's footers), else None."""
        rows = self.known_rows()
        return None if None in rows else sum(rows)

    def rows_estimate(self) -> tuple[int, bool] | None:
        """(rows, exact): Parquet footers' rows plus other files' rows, exact once read, else estimated from the
        rows per byte read so far; None before the first line of such a file is read."""
        return self.reads.estimate(self.known_rows(), self.sizes)

    def sizes(self) -> list[int | None]:
        """Bytes of each file as stored."""
        if self.table is not None:
            return list(self.table.sizes)
        return [None if info.get("size") is None else int(info["size"]) for info in self._infos()]

    def known_rows(self) -> list[int | None]:
        """Rows of each file its format knows without reading it (Parquet's footer, read once per source),
        else None."""
        if self._known_rows is None:
            rows: list[int | None] = []
            for path, fmt in zip(self.files, self.formats):
                with storage_errors(f"input {self.display(path)}", self.fs):
                    rows.append(file_format(fmt).rows(self, path))
            self._known_rows = rows
        return self._known_rows

    # -- reading -----------------------------------------------------------------------------------
    def batch_counts(self) -> list[int | None]:
        """Record batches (units) per file, from the Parquet footers; None for other files (known once read)."""
        return [None if rows is None else -(-rows // self.spec.batch_rows) for rows in self.known_rows()]

    def batches(self, columns: list[str], text_column: str | None, *, keep_bad_rows: bool = False,
                files: list[int] | None = None, first: int = 0, stop: int | None = None) -> Iterator[SourceBatch]:
        """Yield record batches of `columns` from every file (or the `files` given) in order.

        Batch j of a file holds its rows [j * batch_rows, (j + 1) * batch_rows): a unit of output. `first` and
        `stop` read only batches first..stop-1 of a file whose format starts anywhere (Parquet: the Ray
        executor's work items). With `keep_bad_rows`, unparseable rows (CSV, JSON Lines) are skipped and
        reported on the batch that follows them; otherwise they stop the read with an InputError naming the file.
        """
        for i in range(len(self.files)) if files is None else files:
            path, fmt = self.files[i], file_format(self.formats[i])
            try:
                yield from fmt.batches(self, i, path, columns, text_column, keep_bad_rows=keep_bad_rows,
                                       first=first, stop=stop)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError) as exc:
                if is_permission_error(exc) or is_storage_error(exc):
                    with storage_errors(f"input {self.display(path)}", self.fs):
                        raise
                raise InputError(f"input {self.display(path)} ({fmt.name}) cannot be read: {exc}",
                                 hint=fmt.read_hint(self, exc)
                                 + "rows already written are kept (output.mode = 'resume' continues after the "
                                   "fix)") from None

    def conform_batch(self, batch: pa.RecordBatch, text_column: str | None) -> pa.RecordBatch:
        """A file's batch in the job's schema (io/schema.py), its text column(s) left as read."""
        return batch if self.schema is None else conform(batch, self.schema, skip=text_column)

    def read_schema(self, columns: list[str], text_column: str | None) -> pa.Schema:
        """The job's schema over `columns`, text columns as binary (undecodable text fails a row, not a read)."""
        texts = names_of(text_column)
        return pa.schema([pa.field(c, pa.binary()) if c in texts else self.schema.field(c) for c in columns])

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
