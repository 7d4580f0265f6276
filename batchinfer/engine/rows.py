"""Row-level checks before inference: decode the text column and find the rows that cannot be predicted."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def decode_texts(column: pa.Array | pa.ChunkedArray, *, null_text: str) -> tuple[pa.Array, dict[int, str]]:
    """Return the column as strings, plus {row: error} for rows that are not usable text.

    Binary values must be UTF-8 (a bad value is a row error and becomes null); nulls are empty text, or row
    errors with `null_text = "error"`.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    errors: dict[int, str] = {}
    if pa.types.is_null(column.type):
        column = pa.nulls(len(column), pa.string())
    elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type) \
            or pa.types.is_binary_view(column.type):
        try:
            column = column.cast(pa.string())
        except pa.ArrowInvalid:
            column, errors = _decode_rows(column)
    elif not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    if null_text == "error" and column.null_count:
        for i in np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False)):
            errors.setdefault(int(i), "text is null (input.null_text = 'error')")
    return column, errors


def _decode_rows(column: pa.Array) -> tuple[pa.Array, dict[int, str]]:
    """The slow path, only for a batch that holds invalid UTF-8: find the bad rows one by one."""
    values: list[str | None] = []
    errors: dict[int, str] = {}
    for i, raw in enumerate(column.to_pylist()):
        if raw is None:
            values.append(None)
            continue
        try:
            values.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            values.append(None)
            errors[i] = f"text is not valid UTF-8 (byte {exc.start}: {raw[exc.start:exc.start + 4]!r})"
    return pa.array(values, type=pa.string()), errors


def lossy_text(column: pa.Array) -> pa.Array:
    """Binary values as text with undecodable bytes replaced, for dead-letter rows people will read."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        return pa.array([None if v is None else v.decode("utf-8", "replace") for v in column.to_pylist()],
                        type=pa.string())
    return pc.cast(column, pa.string())
