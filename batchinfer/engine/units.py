"""The per-unit work every executor runs: prepare a unit (decode, check, tokenize), predict it, write it.

A unit is one record batch of one input file (its name: io/layout.py). The local executor runs
`process_units` over the whole job; each Ray actor runs it over its work items.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchinfer import faults
from batchinfer.engine.inputs import decode_text_inputs
from batchinfer.engine.progress import StageTimes
from batchinfer.engine.rows import lossy_text
from batchinfer.engine.stages import WriteBehind, read_ahead
from batchinfer.errors import RowErrors
from batchinfer.io import Source, SourceBatch
from batchinfer.io.layout import unit_name
from batchinfer.job import JobSpec
from batchinfer.media import medium
from batchinfer.pipelines import Pipeline
from batchinfer.tasks.base import Encoded


@dataclass
class Prepared:
    """One unit made ready for the model in the reader thread: decoded, checked, tokenized."""

    sb: SourceBatch
    values: list  # the texts or images of the good rows sent to the model
    good: np.ndarray  # bool per row: the rows written
    errors: dict[int, str]
    encoded: Encoded | None = None  # text tokenized once: counts, and the ids where the task allows
    truncated: int = 0
    decoded: dict[str, pa.Array] | None = None  # input columns as strings, where they were read as bytes
    sent: np.ndarray | None = None  # bool per row, where not every good row goes to the model (null inputs)


def process_units(spec: JobSpec, source: Source, keep: list[str], predictions: dict[str, str], sink,
                  pipe: Pipeline, done, *, files: list[int] | None = None, first: int = 0,
                  stop: int | None = None, on_rows=None, stages: StageTimes | None = None, predicted=None) -> dict:
    """Predict and write every unit not in `done`, of all files or of `files` (batches first..stop-1).

    Reading, tokenising, inference and writing overlap (reader thread, this thread, writer thread). A file
    with no rows still gets an empty part, so the output's schema is known. Returns this call's row counts.

    `on_rows(n)`: n more rows of this run are done, called per model batch and at the end of each unit (its
    failed rows); units in `done` are not counted. `stages`: busy seconds per stage are added to it.
    `predicted`: the agreement gate's results for the first rows of a unit (engine/gate.py), used, not rerun.
    """
    stages = stages if stages is not None else StageTimes()
    read_columns = list(dict.fromkeys([*keep, *spec.input.read_columns]))
    seen_files: set[int] = set()
    rows_this_run = rows_in = 0
    keep_bad = spec.input.on_error != "fail"

    def prepared():  # runs in the reader thread: reading, decoding and tokenising overlap inference
        bytes_column = spec.input.read_columns if pipe.task.modality == "text" else None  # CSV text as bytes
        part = {} if files is None else {"files": files, "first": first, "stop": stop}  # frames: all, always
        batches = source.batches(read_columns, bytes_column, keep_bad_rows=keep_bad, **part)
        prepare = stages.timed("tokenize", prepare_unit)
        for sb in stages.timed_iter("read", batches):
            done_already = unit_name(sb.file_index, sb.batch_index) in done
            yield sb, None if done_already else prepare(spec, sb, pipe, source)

    infer = stages.timed("infer", infer_unit)
    writer = WriteBehind(stages.timed("write", sink.write))
    try:
        for sb, prep in read_ahead(prepared()):
            seen_files.add(sb.file_index)
            if prep is not None:
                counted = [0]
                table, dead, stats = infer(spec, prep, keep, predictions, pipe,
                                           on_batch=_batch_counter(on_rows, stages, counted), predicted=predicted)
                writer.submit(unit_name(sb.file_index, sb.batch_index), table, dead=dead, stats=stats)
                rows_this_run += table.num_rows
                rows_in += sb.batch.num_rows + len(sb.bad_rows)
                if on_rows is not None and sb.batch.num_rows > counted[0]:  # its rows not predicted
                    on_rows(sb.batch.num_rows - counted[0])
    finally:
        writer.close()  # units predicted before an error are still committed
    for i in range(len(source.files)) if files is None else files:
        unit = unit_name(i, 0)
        if i not in seen_files and unit not in done and not first:
            empty = pa.RecordBatch.from_pylist([], schema=pa.schema([source.schema.field(c) for c in read_columns]))
            sb = SourceBatch(i, source.files[i], 0, empty)
            table, _, stats = infer_unit(spec, prepare_unit(spec, sb, pipe, source), keep, predictions, pipe)
            sink.write(unit, table, dead=None, stats=stats)
    return {"rows_this_run": rows_this_run, "rows_in": rows_in}


def _batch_counter(on_rows, stages: StageTimes, counted: list[int]):
    """The per-model-batch callback of one unit: progress (rows) and padding (tokens)."""
    def on_batch(idx, inputs) -> None:
        stages.count_batch(inputs)
        counted[0] += len(idx)
        if on_rows is not None:
            on_rows(len(idx))
    return on_batch


def prepare_unit(spec: JobSpec, sb: SourceBatch, pipe: Pipeline, source: Source) -> Prepared:
    """Decode the input columns, find the bad rows (undecodable, refused by the task, too long without
    truncation), tokenize."""
    if pipe.task.modality != "text":  # a medium's column: decoded in this (the reader) thread
        column = sb.batch.column(spec.input.read_columns[0])
        values, errors = medium(pipe.task.modality).decode_column(column, base=posixpath.dirname(sb.file),
                                                                   fs=source.fs, processor=pipe.task.processor)
        decoded = [(i, v) for i, v in enumerate(values) if i not in errors]
        for at, why in pipe.task.check_rows([v for _, v in decoded]).items():  # e.g. a clip too long
            errors[decoded[at][0]] = why
        good = np.array([i not in errors for i in range(len(values))], dtype=bool)
        return Prepared(sb, [v for v, ok in zip(values, good) if ok], good, errors)
    inputs = decode_text_inputs(spec.input, pipe.task, sb.batch)
    errors, nulls = inputs.errors, inputs.nulls
    for row, why in pipe.task.check_rows(inputs.values).items():
        if nulls is None or not nulls[row]:  # a null input is not checked: it is not predicted
            errors.setdefault(row, why)
    good = np.ones(len(inputs.values), dtype=bool)
    for row in errors:
        good[row] = False
    sent = good if nulls is None else good & ~nulls
    good_values = [v for v, ok in zip(inputs.values, sent) if ok]
    encoded = pipe.encode(good_values)
    too_long = encoded.lengths > pipe.max_length
    if not spec.model.truncation and too_long.any():
        sent_idx = np.flatnonzero(sent)
        for pos in np.flatnonzero(too_long):
            errors[int(sent_idx[pos])] = (f"text has {int(encoded.lengths[pos])} tokens, more than max_length "
                                          f"{pipe.max_length} (model.truncation = false)")
        good[sent_idx[too_long]] = False
        sent = sent & good
        good_values = [v for v, long in zip(good_values, too_long) if not long]
        encoded, too_long = encoded.subset(np.flatnonzero(~too_long)), too_long[~too_long]
    return Prepared(sb, good_values, good, errors, encoded=encoded,
                    truncated=int(too_long.sum()) if spec.model.truncation else 0, decoded=inputs.decoded,
                    sent=None if nulls is None or not nulls.any() else sent)


def unit_keys(prep: Prepared) -> np.ndarray:
    """Each predicted row's (file, row) key: its sampling seed, whatever batch or unit size it is run in."""
    sent = prep.sent if prep.sent is not None else prep.good
    return (np.int64(prep.sb.file_index) << 40) + prep.sb.row_offset + np.flatnonzero(sent)


def infer_unit(spec: JobSpec, prep: Prepared, keep: list[str], names: dict[str, str], pipe: Pipeline, *,
               on_batch=None, predicted=None):
    """Predict one unit: returns the output table, the dead-letter table (or None) and the unit's counts.

    `predicted` (engine/gate.py Predicted): results already made for the unit's first rows, not run again."""
    sb, errors, good = prep.sb, prep.errors, prep.good
    if errors and spec.input.on_error == "fail":
        row = min(errors)
        raise RowErrors(f"input {sb.file}, row {sb.row_offset + row}: {errors[row]}",
                        hint="fix the row, or set input.on_error = 'skip' or 'dead-letter'; "
                             "rows already written are kept")
    faults.hit("infer")
    keys = unit_keys(prep)
    known = predicted.known_for(unit_name(sb.file_index, sb.batch_index), prep.values, keys) if predicted else None
    preds = pipe.predict(prep.values, spec.batching, encoded=prep.encoded, on_batch=on_batch, keys=keys,
                         known=known)
    batch = sb.batch
    for name, texts in (prep.decoded or {}).items():  # decoded CSV text replaces the raw bytes
        if name in keep:
            batch = batch.set_column(batch.schema.get_field_index(name), name, texts)
    good_rows = batch.filter(pa.array(good)) if not good.all() else batch
    if prep.sent is not None:  # rows with a null input: null predictions
        preds = {c: with_nulls(preds[c], prep.sent[good]) for c in names}
    table = pa.Table.from_arrays([good_rows.column(c) for c in keep] + [preds[c] for c in names],
                                 names=[*keep, *names.values()])
    dead = None
    failed = len(errors) + len(sb.bad_rows)
    if spec.input.on_error == "dead-letter" and failed:
        dead = dead_letter(sb, keep, errors, spec.input.read_columns if pipe.task.modality == "text" else ())
    return table, dead, {"failed": failed, "truncated": prep.truncated}


def with_nulls(values: pa.Array | pa.ChunkedArray, present: np.ndarray) -> pa.Array | pa.ChunkedArray:
    """`values` (one per true row of `present`) spread over all rows, with nulls where `present` is false."""
    index = np.cumsum(present) - 1
    return pc.take(values, pa.array(index, type=pa.int64(), mask=~present))


DEAD_LETTER_COLUMNS = ("_error", "_source_file", "_source_row")  # beside the kept columns


def dead_letter(sb: SourceBatch, keep: list[str], errors: dict[int, str], text_columns: list[str] | tuple = ()
                ) -> pa.Table:
    """A unit's failed rows with their error, file and row (CSV rows that did not parse: their raw line)."""
    rows = sorted(errors)
    taken = sb.batch.take(pa.array(rows, type=pa.int64()))
    columns = {c: lossy_text(taken.column(c)) if c in text_columns else taken.column(c) for c in keep}
    error, source_file, source_row = DEAD_LETTER_COLUMNS
    table = pa.table({**columns, error: pa.array([errors[r] for r in rows], pa.string()),
                      source_file: pa.array([sb.file] * len(rows), pa.string()),
                      source_row: pa.array([sb.row_offset + r for r in rows], pa.int64())})
    if sb.bad_rows:  # unparseable CSV rows: only the raw line survives
        bad = pa.table({c: pa.nulls(len(sb.bad_rows), table.schema.field(c).type) for c in keep}
                       | {error: pa.array([b.error + ": " + b.text for b in sb.bad_rows], pa.string()),
                          source_file: pa.array([sb.file] * len(sb.bad_rows), pa.string()),
                          source_row: pa.array([b.line for b in sb.bad_rows], pa.int64())})
        table = pa.concat_tables([table, bad.cast(table.schema)])
    return table
