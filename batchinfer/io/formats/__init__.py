"""Formats: one module each (parquet.py, csv.py, jsonl.py, delta.py, iceberg.py, lance.py), registered in
FORMAT_MODULES. A module's FORMAT says which file names are its own, reads a file's (or a table's) schema
and streams its record batches (base.FileFormat); `Source` (io/source.py) lists, checks and reads through
them. A table format's WRITER (base.TableWriter) commits a run's staged units to the table
(io/table_sink.py). The libraries of table formats are imported only when used.
"""

from __future__ import annotations

import importlib
from functools import cache

from batchinfer.io.formats.base import BadRow, FileFormat, SourceBatch, TableListing, TableWriter

FORMAT_MODULES = ("parquet", "csv", "jsonl", "delta", "iceberg", "lance")


@cache
def _modules() -> list:
    return [importlib.import_module(f"{__name__}.{name}") for name in FORMAT_MODULES]


@cache
def formats() -> dict[str, FileFormat]:
    """Name -> input format, in FORMAT_MODULES order."""
    return {module.FORMAT.name: module.FORMAT for module in _modules()}


@cache
def writers() -> dict[str, TableWriter]:
    """Name -> table writer (output formats other than parquet's folder of parts)."""
    return {module.WRITER.name: module.WRITER for module in _modules() if hasattr(module, "WRITER")}


def table_writer(name: str) -> TableWriter | None:
    """The writer of table format `name`; None for parquet (io/sink.py writes its folder itself)."""
    return writers().get(name)


def writer_for(spec) -> TableWriter | None:
    """What commits an output's staged runs (io/table_sink.py): a table's writer, or a partitioned Parquet
    folder's; None for a Parquet folder of parts (io/sink.py commits unit by unit)."""
    if spec.format == "parquet":
        return importlib.import_module(f"{__name__}.parquet").PARTITIONED if spec.partition_by else None
    return table_writer(spec.format)


def output_format_names() -> list[str]:
    return ["parquet", *writers()]


def table_format_at(fs, root: str) -> str | None:
    """The table format whose folder `root` is (a Delta log, a Lance manifest), or None."""
    return next((f.name for f in formats().values() if f.is_table and f.is_table_folder(fs, root)), None)


def file_format(name: str) -> FileFormat:
    return formats()[name]


def format_of(path: str, requested: str) -> str | None:
    """The format of a file: `requested` (input.format), else the one its name ends with (None: unknown)."""
    if requested != "auto":
        return requested
    lower = path.lower()
    return next((f.name for f in formats().values() if lower.endswith(f.suffixes)), None)


def format_names() -> list[str]:
    return list(formats())


__all__ = ["BadRow", "FORMAT_MODULES", "FileFormat", "SourceBatch", "TableListing", "TableWriter", "file_format",
           "format_names", "format_of", "formats", "output_format_names", "table_format_at", "table_writer", "writer_for",
           "writers"]
