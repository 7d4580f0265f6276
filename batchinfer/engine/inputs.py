"""A unit's model inputs from its columns: each input role's column decoded, or a template filled in.

`input.column` feeds the task's first role; `input.columns` maps roles to columns; `input.template` builds
the first role's text from several columns (vectorised with Arrow: no per-row Python). Null cells follow
`input.null_text`: empty text, a bad row, or (`null`) a row kept without a prediction: a row is null when any
of its input columns (roles or template columns) is null.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchinfer.engine.rows import decode_texts
from batchinfer.job import InputSpec


@dataclass
class TextInputs:
    """One batch's texts: one value per row (a text, or a tuple of texts in role order), and the bad rows."""

    values: list
    errors: dict[int, str]
    decoded: dict[str, pa.Array] = field(default_factory=dict)  # input columns read as bytes, now strings
    nulls: np.ndarray | None = None  # null_text = "null": bool per row, an input column is null (not an error)


def decode_text_inputs(spec: InputSpec, task, batch: pa.RecordBatch, *, null_text: str | None = None
                       ) -> TextInputs:
    """Decode the batch's input columns and build each row's value for `task` (see `Task.row_values`)."""
    null_text = null_text or spec.null_text
    decoded: dict[str, pa.Array] = {}
    errors: dict[int, str] = {}
    for name in spec.read_columns:
        column = batch.column(name)
        texts, bad = decode_texts(column, null_text=null_text)
        if bad and len(spec.read_columns) > 1:
            bad = {row: f"column {name!r}: {why}" for row, why in bad.items()}
        for row, why in bad.items():
            errors.setdefault(row, why)
        decoded[name] = texts
    roles = spec.roles(task.roles[0])
    if spec.template is not None:
        by_role = {task.roles[0]: fill_template(spec.template, decoded).to_pylist()}
    else:
        by_role = {role: pc.fill_null(decoded[name], "").to_pylist() for role, name in roles.items()}
    values = task.row_values(by_role)
    changed = {name: texts for name, texts in decoded.items() if batch.column(name).type != texts.type}
    nulls = _null_rows(decoded.values(), batch.num_rows, errors) if null_text == "null" else None
    return TextInputs(values, errors, changed, nulls)


def _null_rows(columns, rows: int, errors: dict[int, str]) -> np.ndarray:
    """Rows where any of `columns` is null, leaving out the bad rows (an undecodable value is null too)."""
    nulls = np.zeros(rows, dtype=bool)
    for column in columns:
        nulls |= column.is_null().to_numpy(zero_copy_only=False)
    if errors:
        nulls[list(errors)] = False
    return nulls


def fill_template(template: str, columns: dict[str, pa.Array]) -> pa.Array:
    """The template with each row's values in place of {column} (nulls as empty text)."""
    pieces: list[pa.Array | str] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append(literal)
        if name is not None:
            pieces.append(pc.fill_null(columns[name], ""))
    if len(pieces) == 1 and isinstance(pieces[0], pa.Array):
        return pieces[0]
    return pc.binary_join_element_wise(*(p if isinstance(p, pa.Array) else pa.scalar(p, pa.string()) for p in pieces),
                                       "")
