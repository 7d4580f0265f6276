"""Media columns (images, audio): how a modality's values are found in a column, checked, decoded and turned
into model inputs. A modality is one module here, named in MEDIA_MODULES; a task declares its own
(`Task.modality`) and the rest of batchinfer asks `medium(name)` (text is the tokenizer's, not a medium).

A value is encoded bytes (binary), a Hugging Face datasets struct (`bytes`, `path`), or a string path or URL
(relative paths are read from the input file's folder, on the input's filesystem); a medium may take more
(audio: the decoded `{array, sampling_rate}` struct).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from functools import cache
from typing import Any, ClassVar

import pyarrow as pa

MEDIA_MODULES = ("image", "audio")


class Medium(ABC):
    """One modality's column types, decoding, processor and model inputs."""

    name: ClassVar[str]
    column_hint: ClassVar[str]  # what a column of this medium holds (the message for a column of another type)
    struct_fields: ClassVar[frozenset[str]] = frozenset({"bytes", "path"})  # a struct column's fields, any of

    def column_fits(self, t: pa.DataType) -> bool:
        if pa.types.is_struct(t):
            return any(t.field(i).name in self.struct_fields for i in range(t.num_fields))
        return (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_string(t)
                or pa.types.is_large_string(t) or pa.types.is_null(t))

    @abstractmethod
    def load_processor(self, path: str, trust_remote_code: bool = False) -> Any:
        """The model folder's processor for this medium (image processor, feature extractor)."""

    @abstractmethod
    def model_inputs(self, processor: Any) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """The model's input names for this medium and one sample's shape (-1: an axis of any length)."""

    @abstractmethod
    def dummy(self, shape: tuple[int, ...]):
        """A batch of two samples of `shape` for tracing the export, and its dynamic axes."""

    def decode_column(self, column: pa.Array | pa.ChunkedArray, *, base: str, fs, processor: Any
                      ) -> tuple[list[Any], dict[int, str]]:
        """Decoded values (None where a row fails) and {row: why} for rows without a usable value."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        values: list[Any] = []
        errors: dict[int, str] = {}
        for i, value in enumerate(column.to_pylist()):
            try:
                values.append(self.decode(value, base=base, fs=fs, processor=processor))
            except FileNotFoundError:
                errors[i] = f"{self.name} file not found: {location(value)}"
                values.append(None)
            except (OSError, ValueError, RuntimeError) as exc:
                errors[i] = str(exc)
                values.append(None)
        return values, errors

    @abstractmethod
    def decode(self, value: Any, *, base: str, fs, processor: Any) -> Any:
        """One column value decoded; ValueError (or OSError) with the reason where it cannot be."""

    @abstractmethod
    def call_value(self, value: Any, processor: Any) -> Any:
        """One input of a transformers-style call, decoded as the column's values are."""


@cache
def medium(name: str) -> Medium:
    if name not in MEDIA_MODULES:
        raise KeyError(f"no medium {name!r}; media: {', '.join(MEDIA_MODULES)}")
    module = importlib.import_module(f"{__name__}.{name}")
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, Medium) and v.__module__ == module.__name__]
    return found[0]()


def location(value: Any) -> str | None:
    """Where a value's bytes are to be read from (its path or URL), if anywhere."""
    if isinstance(value, dict):
        return value.get("path")
    return value if isinstance(value, str) else None


def read_bytes(value: Any, *, base: str, fs) -> bytes | None:
    """The encoded bytes of a bytes / {bytes, path} / path value (None for a null); reads a path or URL."""
    import fsspec

    data = value.get("bytes") if isinstance(value, dict) else bytes(value) if isinstance(
        value, (bytes, bytearray)) else None
    where = location(value)
    if data is None and where:
        if "://" in where:
            with fsspec.open(where, "rb") as fh:
                data = fh.read()
        elif fs is None:  # a call's value: a local path as given
            with open(where, "rb") as fh:
                data = fh.read()
        else:
            with fs.open(where if where.startswith("/") else f"{base}/{where}", "rb") as fh:
                data = fh.read()
    return data
