"""One schema per job: the input files' column types unified before the first part is written.

CSV types are inferred per file (an all-empty column is `null`, digits are `int64`), Parquet files carry their
own; parts written with each file's types would make a folder that polars and pyarrow refuse to read as one.
Types widen only where no value can change (int32 -> int64, null -> anything, string -> large_string); a CSV
column that meets text elsewhere is read as text (its values are text in the file); anything else is an
input error naming the files and the types.
"""

from __future__ import annotations

from collections.abc import Iterable

from collections import Counter

import pyarrow as pa

from batchinfer.errors import InputError


def duplicate_names(schema: pa.Schema) -> list[str]:
    return [name for name, n in Counter(schema.names).items() if n > 1]


def _plain(t: pa.DataType) -> pa.DataType:
    """Dictionary and view types stand for their values."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_binary_view(t):
        return pa.binary()
    return t


def _int_bits(t: pa.DataType) -> tuple[bool, int]:
    return pa.types.is_signed_integer(t), t.bit_width


def widen(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """The narrowest type that holds every value of `a` and of `b` unchanged, or None."""
    a, b = _plain(a), _plain(b)
    if a == b:
        return a
    if pa.types.is_null(a) or pa.types.is_null(b):
        return b if pa.types.is_null(a) else a
    if pa.types.is_integer(a) and pa.types.is_integer(b):
        (sa, wa), (sb, wb) = _int_bits(a), _int_bits(b)
        if sa == sb:
            return a if wa >= wb else b
        signed, unsigned = (wa, wb) if sa else (wb, wa)
        width = max(signed, unsigned * 2)
        return pa.int64() if width == 64 else None if width > 64 else getattr(pa, f"int{width}")()
    if pa.types.is_floating(a) and pa.types.is_floating(b):
        return a if a.bit_width >= b.bit_width else b
    if pa.types.is_integer(a) and pa.types.is_floating(b) or pa.types.is_floating(a) and pa.types.is_integer(b):
        i, f = (a, b) if pa.types.is_integer(a) else (b, a)
        mantissa = 24 if f.bit_width == 32 else 53 if f.bit_width == 64 else 11
        return f if i.bit_width < mantissa else pa.float64() if i.bit_width < 53 else None
    texts = {pa.string(), pa.large_string()}
    if a in texts and b in texts:
        return pa.large_string()
    binaries = {pa.binary(), pa.large_binary()}
    if a in binaries and b in binaries:
        return pa.large_binary()
    if pa.types.is_timestamp(a) and pa.types.is_timestamp(b) and a.tz == b.tz:
        units = ["s", "ms", "us", "ns"]
        return a if units.index(a.unit) >= units.index(b.unit) else b
    return None


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(_plain(t)) or pa.types.is_large_string(_plain(t))


def is_text_type(t: pa.DataType) -> bool:
    """A column that can hold text: strings of any kind, binary (decoded later), all nulls."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
            or pa.types.is_null(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t))


def names_of(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """One column name, several, or none, as a tuple."""
    return () if value is None else (value,) if isinstance(value, str) else tuple(value)


def unify(files: list[tuple[str, bool, pa.Schema]], columns: list[str], *, skip: str | Iterable[str] | None = None
          ) -> tuple[pa.Schema, set[str]]:
    """The job's schema over `columns`, from (display path, are its types inferred (CSV, JSON Lines), schema)
    per file.

    Returns the schema and the columns that files with inferred types must read as text. `skip` (the text
    columns, decoded later) is left as the first file has it.
    """
    skip = names_of(skip)
    fields, as_text = [], set()
    for name in columns:
        typed = [(path, s.field(name).type) for path, guessed, s in files if not guessed]
        inferred = [(path, s.field(name).type) for path, guessed, s in files if guessed]
        found = typed + inferred
        if name in skip:
            fields.append(pa.field(name, found[0][1]))
            continue
        merged = _merge(typed)
        if merged is not False:
            csv_merged = _merge(inferred, start=merged)
            if csv_merged is not False:
                if inferred and (csv_merged is None or pa.types.is_null(csv_merged)):
                    csv_merged = pa.string()  # empty in every file's first block: values later are text
                    as_text.add(name)
                fields.append(pa.field(name, csv_merged))
                continue
            if merged is None or _is_text(merged):  # the CSV values are text in the file: read them as such
                fields.append(pa.field(name, pa.string() if merged is None else merged))
                as_text.add(name)
                continue
        kinds = sorted({f"{t}" for _, t in found})
        shown = "; ".join(f"{path}: {t}" for path, t in found[:6]) + ("; ..." if len(found) > 6 else "")
        raise InputError(f"input column {name!r} has types that do not fit together ({', '.join(kinds)}): {shown}",
                         hint="one job writes one schema: give the files the same type for this column, "
                              "or run them as separate jobs (CSV: input.csv.infer_types = false reads text)")
    return pa.schema(fields), as_text


def _merge(found: list[tuple[str, pa.DataType]], start: pa.DataType | None = None) -> pa.DataType | None | bool:
    """Widen all types together: the type, None when there are none, False when two do not fit."""
    merged = start
    for _, t in found:
        merged = _plain(t) if merged is None else widen(merged, t)
        if merged is None:
            return False
    return merged


def conform(batch: pa.RecordBatch, schema: pa.Schema, *, skip: str | Iterable[str] | None = None
            ) -> pa.RecordBatch:
    """Cast a batch's columns to the job's schema (widening only, so no value changes); `skip` stays as read."""
    skip = names_of(skip)
    arrays, changed = [], False
    for name, column in zip(batch.schema.names, batch.columns):
        want = schema.field(name).type if name not in skip and name in schema.names else column.type
        if column.type != want:
            column, changed = column.cast(want), True
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names) if changed else batch
