"""Input file formats: one module each (parquet.py, csv.py, jsonl.py), registered in FORMAT_MODULES. A format
says which file names are its own, reads a file's schema and streams its record batches (base.FileFormat);
`Source` (io/source.py) lists, checks and reads files through them.
"""

from __future__ import annotations

import importlib
from functools import cache

from batchinfer.io.formats.base import BadRow, FileFormat, SourceBatch

FORMAT_MODULES = ("parquet", "csv", "jsonl")


@cache
def formats() -> dict[str, FileFormat]:
    """Name -> format, in FORMAT_MODULES order."""
    found: dict[str, FileFormat] = {}
    for module_name in FORMAT_MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        found[module.FORMAT.name] = module.FORMAT
    return found


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


__all__ = ["BadRow", "FORMAT_MODULES", "FileFormat", "SourceBatch", "file_format", "format_names", "format_of",
           "formats"]
