"""Run a job on this machine: check everything, then stream source -> pipeline -> sink, exactly once."""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from batchinfer import faults
from batchinfer.engine.progress import Progress
from batchinfer.engine.rows import decode_images, decode_texts, lossy_text
from batchinfer.engine.stages import WriteBehind, read_ahead
from batchinfer.errors import EXIT_OK, EXIT_ROWS_FAILED, JobFileError, ModelError, RowErrors
from batchinfer.io import ParquetSink, Source, SourceBatch
from batchinfer.io.sink import unit_name
from batchinfer.job import JobSpec
from batchinfer.pipelines import Pipeline, back_to_fp32, build_pipeline, row_cosines
from batchinfer.tasks import task_class
from batchinfer.tasks.base import Encoded

log = logging.getLogger("batchinfer")

PREDICTION_COLUMNS = {"text-classification": ("label", "score"), "feature-extraction": ("embedding",),
                      "image-classification": ("label", "score"), "token-classification": ("entities",),
                      "zero-shot-classification": ("labels", "scores")}
ERROR_COLUMNS = ("_error", "_source_file", "_source_row")


@dataclass
class RunResult:
    rows: int  # rows in the output (all units, including those committed by an earlier, resumed run)
    seconds: float
    output_path: str
    parts: int
    files: int
    backend: str
    rows_this_run: int = 0
    rows_in: int = 0  # rows this run read (failed ones included)
    failed: int = 0  # rows skipped or dead-lettered
    truncated: int = 0
    skipped_units: int = 0  # units already committed by an earlier run
    already_complete: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    model_fingerprint: str = ""
    dead_letter: str | None = None  # where dead-lettered rows are, if any

    def to_dict(self) -> dict:
        """The run summary written by --summary-json (and the fields of a JSON log's summary line)."""
        from batchinfer.versions import versions

        return {"status": "already complete" if self.already_complete else ("rows failed" if self.failed else "ok"),
                "exit_code": self.exit_code, "output": self.output_path, "rows_in": self.rows_in,
                "rows_out": self.rows, "rows_this_run": self.rows_this_run, "failed": self.failed,
                "dead_letter": self.dead_letter, "truncated": self.truncated, "files": self.files,
                "units": self.parts, "units_already_done": self.skipped_units, "backend": self.backend,
                "model_fingerprint": self.model_fingerprint, "seconds": round(self.seconds, 3),
                "rows_per_second": round(self.rows_per_second, 2), "timings": self.timings, "versions": versions()}

    @property
    def rows_per_second(self) -> float:
        return self.rows_this_run / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_ROWS_FAILED if self.failed else EXIT_OK

    def summary_line(self) -> str:
        if self.already_complete:
            return f"batchinfer: {self.output_path} is already complete ({self.rows:,} rows); nothing to do"
        text = (f"batchinfer: {self.rows_this_run:,} rows in {self.seconds:.1f} s "
                f"({self.rows_per_second:,.1f} rows/s) -> {self.output_path}")
        extras = []
        if self.skipped_units:
            extras.append(f"resumed: {self.skipped_units} unit(s) were already done, {self.rows:,} rows in all")
        if self.failed:
            extras.append(f"{self.failed:,} row(s) failed")
        if self.truncated:
            extras.append(f"{self.truncated:,} row(s) truncated")
        return text + (f" [{'; '.join(extras)}]" if extras else "")


def prediction_names(spec: JobSpec) -> dict[str, str]:
    """Canonical prediction column -> output name, after `output.columns` renames (checked)."""
    canonical = PREDICTION_COLUMNS[spec.model.task]
    unknown = [k for k in spec.output.columns if k not in canonical]
    if unknown:
        raise JobFileError(f"output.columns: {', '.join(map(repr, unknown))} is not a prediction column of "
                           f"{spec.model.task}; allowed keys: {', '.join(canonical)}")
    names = {c: spec.output.columns.get(c, c) for c in canonical}
    if len(set(names.values())) != len(names):
        raise JobFileError(f"output.columns: two prediction columns share a name: {names}")
    return names


def kept_columns(spec: JobSpec, schema: pa.Schema, predictions: dict[str, str]) -> list[str]:
    keep = spec.output.keep_columns if spec.output.keep_columns is not None else list(schema.names)
    clash = [c for c in keep if c in predictions.values() or c in ERROR_COLUMNS]
    if clash:
        raise JobFileError(
            f"output column(s) {', '.join(map(repr, clash))} would hold both an input column and a prediction",
            hint="rename the prediction with [output.columns], e.g. label = 'predicted_label', "
                 "or leave the input column out of output.keep_columns")
    return keep


def check_job(spec: JobSpec, source=None, *, allow_complete: bool = False
              ) -> tuple[Source, list[str], dict[str, str], ParquetSink]:
    """Every check that needs neither the model nor a write: input files and columns, names, output mode."""
    source = source or Source(spec.input)
    sink = ParquetSink(spec.output)
    overlap = source.reads_under(sink.fs, sink.root)
    if overlap is not None:
        raise JobFileError(f"output.path {spec.output.path} is where input.path {overlap!r} reads: every run "
                           "would read its own output back as input",
                           hint="write the output outside the input folder (or narrow the input pattern)")
    schema = source.check(spec.input.column, spec.output.keep_columns, modality=task_class(spec.model.task).modality)
    predictions = prediction_names(spec)
    keep = kept_columns(spec, schema, predictions)
    sink.check(allow_complete=allow_complete)
    return source, keep, predictions, sink


REDUCED_SAMPLE_ROWS = 512


def check_reduced_on_data(spec: JobSpec, source, pipe: Pipeline) -> float:
    """Compare int8 or bf16 with fp32 on the job's own first rows; stop before writing if they differ.

    Classification: the share of equal labels; embeddings: the mean cosine. Must reach model.min_agreement.
    """
    reduced = pipe.backend.reduced
    first = next(iter(source.batches([spec.input.column], spec.input.column)), None)
    if first is None:
        return 1.0
    texts, _ = decode_texts(first.batch.column(spec.input.column), null_text="empty")
    sample = [t for t in texts.to_pylist() if t][:REDUCED_SAMPLE_ROWS]
    if not sample:
        return 1.0
    reference = build_pipeline(spec.model.model_copy(update={"quantize": "none", "precision": "fp32"}),
                               spec.runtime)
    got, want = pipe.predict(sample, spec.batching), reference.predict(sample, spec.batching)
    if "embedding" in got:
        a, b = (np.asarray(x.to_pylist(), dtype=np.float32) for x in (got["embedding"], want["embedding"]))
        agreement = float(row_cosines(a, b).mean())
        what = "mean embedding cosine"
    else:
        key = next(iter(got))  # label, labels or entities: the answer itself
        agreement = float(np.mean([g == w for g, w in zip(got[key].to_pylist(), want[key].to_pylist())]))
        what = f"share of equal {key}"
    log.info("model: %s vs fp32 on the first %d rows of the input: %s %.4f", reduced, len(sample), what,
             agreement)
    if agreement < spec.model.min_agreement:
        raise ModelError(f"{reduced} changes this model's answers on your data: {what} {agreement:.4f} over the "
                         f"first {len(sample)} rows, below model.min_agreement = {spec.model.min_agreement}",
                         hint=f"use {back_to_fp32(reduced)}, or lower model.min_agreement if that is acceptable")
    return agreement


def plan_of(spec: JobSpec, source: Source, pipe: Pipeline) -> dict:
    """What makes an output what it is; a resume must match it exactly."""
    model = spec.model.model_dump()
    return {
        "files": [[path, _digest({"size": size, "version": version})] for path, size, version in source.versions()],
        "input": _digest(spec.input.model_dump(exclude={"path", "storage_options"})),
        # a change of the kept columns' types would mix schemas in one folder (the text column is decoded)
        "schema": _digest({f.name: str(f.type) for f in source.schema if f.name != spec.input.column}),
        "model": _digest({**model, "content": pipe.ref.content_hash}),
        "batching": _digest(spec.batching.model_dump()),
        "output": _digest(spec.output.model_dump(include={"keep_columns", "columns", "compression",
                                                           "compression_level"})),
    }


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_job(spec: JobSpec, *, pipeline: Pipeline | None = None, progress: bool | None = None,
            source=None, if_complete: str = "error") -> RunResult:
    """Run a job; `source` replaces the files of `spec.input` (the polars API passes a frame).

    `if_complete = "skip"`: an output already completed by this same job is left as it is (exit 0), whatever
    the output mode: what a scheduler's retry of a finished task wants.
    """
    started = time.perf_counter()
    # 1. fail early, before the model and before writing
    source, keep, predictions, sink = check_job(spec, source, allow_complete=if_complete == "skip")
    if spec.runtime.executor == "ray":
        from batchinfer.distributed.ray import import_ray

        import_ray()  # installed? (before the model is loaded)
    pipe = pipeline or build_pipeline(spec.model, spec.runtime)
    if pipe.backend.reduced:
        check_reduced_on_data(spec, source, pipe)
    ready = time.perf_counter()

    state = sink.inspect()
    plan = plan_of(spec, source, pipe)
    fingerprint = f"{pipe.ref.content_hash[:16]}:{plan['model']}"
    if ((spec.output.mode == "resume" or if_complete == "skip") and state.complete
            and sink.resume_conflict(state, plan) is None and not sink.changed_files(state, plan)):
        totals = state.summary or {}
        return RunResult(rows=int(totals.get("rows", 0)), seconds=time.perf_counter() - started,
                         output_path=spec.output.path, parts=len(state.parts), files=len(source.files),
                         backend=spec.model.backend, already_complete=True, model_fingerprint=fingerprint)

    done = sink.open(plan)  # 2. lock, recover, and learn what an earlier run already committed
    try:
        if spec.runtime.executor == "ray":
            result = _stream_on_ray(spec, source, keep, predictions, sink, done, progress)
        else:
            result = _stream(spec, source, keep, predictions, sink, pipe, done, progress)
        totals = sink.commit({"model": spec.model.name, "task": spec.model.task, "backend": spec.model.backend,
                              "files": len(source.files), "model_fingerprint": fingerprint})
    finally:
        sink.close()
    seconds = time.perf_counter() - started
    result.update(rows=totals["rows"], failed=totals["failed"], truncated=totals["truncated"],
                  parts=totals["units"])
    dead = f"{spec.output.path.rstrip('/')}/_dead_letter" if totals["failed"] and \
        spec.input.on_error == "dead-letter" else None
    return RunResult(seconds=seconds, output_path=spec.output.path, files=len(source.files),
                     backend=spec.model.backend, skipped_units=len(done), model_fingerprint=fingerprint,
                     dead_letter=dead,
                     timings={"setup": round(ready - started, 3), "total": round(seconds, 3)}, **result)


@dataclass
class Prepared:
    """One unit made ready for the model in the reader thread: decoded, checked, tokenized."""

    sb: SourceBatch
    values: list  # the good rows' texts or images
    good: np.ndarray  # bool per row
    errors: dict[int, str]
    encoded: Encoded | None = None  # text tokenized once: counts, and the ids where the task allows
    truncated: int = 0
    decoded: pa.Array | None = None  # the text column as strings, where it was read as bytes


def _progress(spec: JobSpec, source, progress: bool | None) -> Progress:
    if progress is None:
        progress = spec.runtime.progress == "always" or (spec.runtime.progress == "auto" and sys.stderr.isatty())
    return Progress(source.total_rows(), enabled=progress)


def _stream(spec, source, keep, predictions, sink, pipe, done, progress) -> dict:
    bar = _progress(spec, source, progress)
    try:
        return process_units(spec, source, keep, predictions, sink, pipe, done, on_rows=bar.update)
    finally:
        bar.close()


def _stream_on_ray(spec, source, keep, predictions, sink, done, progress) -> dict:
    from batchinfer.distributed.ray import run_units

    if not isinstance(source, Source):
        raise JobFileError("runtime.executor = 'ray' runs jobs that read files; a polars frame is predicted here",
                           hint="leave runtime.executor as 'local' for frames, or write the frame to Parquet")
    bar = _progress(spec, source, progress)
    try:
        result = run_units(spec, source, keep, predictions, sink, done, on_rows=bar.update)
    finally:
        bar.close()
    sink.remove_temp_files()  # parts a killed worker left half-written (its unit was redone by another)
    return result


def process_units(spec: JobSpec, source: Source, keep: list[str], predictions: dict[str, str], sink: ParquetSink,
                  pipe: Pipeline, done, *, files: list[int] | None = None, first: int = 0,
                  stop: int | None = None, on_rows=None) -> dict:
    """Predict and write every unit not in `done`, of all files or of `files` (batches first..stop-1).

    Reading, tokenising, inference and writing overlap (reader thread, this thread, writer thread). A file
    with no rows still gets an empty part, so the output's schema is known. Returns this call's row counts.
    """
    read_columns = list(dict.fromkeys([*keep, spec.input.column]))
    seen_files: set[int] = set()
    rows_this_run = rows_in = 0
    keep_bad = spec.input.on_error != "fail"

    def prepared():  # runs in the reader thread: reading, decoding and tokenising overlap inference
        bytes_column = spec.input.column if pipe.task.modality == "text" else None  # CSV text read as bytes
        part = {} if files is None else {"files": files, "first": first, "stop": stop}  # frames: all, always
        for sb in source.batches(read_columns, bytes_column, keep_bad_rows=keep_bad, **part):
            done_already = unit_name(sb.file_index, sb.batch_index) in done
            yield sb, None if done_already else _prepare(spec, sb, pipe, source)

    writer = WriteBehind(sink.write)
    try:
        for sb, prep in read_ahead(prepared()):
            seen_files.add(sb.file_index)
            if prep is not None:
                table, dead, stats = _infer(spec, prep, keep, predictions, pipe)
                writer.submit(unit_name(sb.file_index, sb.batch_index), table, dead=dead, stats=stats)
                rows_this_run += table.num_rows
                rows_in += sb.batch.num_rows + len(sb.bad_rows)
            if on_rows is not None:
                on_rows(sb.batch.num_rows)
    finally:
        writer.close()  # units predicted before an error are still committed
    for i in range(len(source.files)) if files is None else files:
        unit = unit_name(i, 0)
        if i not in seen_files and unit not in done and not first:
            empty = pa.RecordBatch.from_pylist([], schema=pa.schema([source.schema.field(c) for c in read_columns]))
            sb = SourceBatch(i, source.files[i], 0, empty)
            table, _, stats = _infer(spec, _prepare(spec, sb, pipe, source), keep, predictions, pipe)
            sink.write(unit, table, dead=None, stats=stats)
    return {"rows_this_run": rows_this_run, "rows_in": rows_in}


def _prepare(spec: JobSpec, sb: SourceBatch, pipe: Pipeline, source: Source) -> Prepared:
    column = sb.batch.column(spec.input.column)
    if pipe.task.modality == "image":
        images, errors = decode_images(column, base=posixpath.dirname(sb.file), fs=source.fs)
        good = np.array([i not in errors for i in range(len(images))], dtype=bool)
        return Prepared(sb, [im for im, ok in zip(images, good) if ok], good, errors)
    texts, errors = decode_texts(column, null_text=spec.input.null_text)
    good = np.ones(len(texts), dtype=bool)
    for row in errors:
        good[row] = False
    values = [t if t is not None else "" for t in texts.to_pylist()]
    good_values = [v for v, ok in zip(values, good) if ok]
    encoded = pipe.encode(good_values)
    too_long = encoded.lengths > pipe.max_length
    if not spec.model.truncation and too_long.any():
        good_idx = np.flatnonzero(good)
        for pos in np.flatnonzero(too_long):
            errors[int(good_idx[pos])] = (f"text has {int(encoded.lengths[pos])} tokens, more than max_length "
                                          f"{pipe.max_length} (model.truncation = false)")
        good[good_idx[too_long]] = False
        good_values = [v for v, long in zip(good_values, too_long) if not long]
        encoded, too_long = encoded.subset(np.flatnonzero(~too_long)), too_long[~too_long]
    return Prepared(sb, good_values, good, errors, encoded=encoded,
                    truncated=int(too_long.sum()) if spec.model.truncation else 0,
                    decoded=texts if column.type != texts.type else None)


def _infer(spec: JobSpec, prep: Prepared, keep: list[str], names: dict[str, str], pipe: Pipeline):
    """Predict one unit: returns the output table, the dead-letter table (or None) and the unit's counts."""
    sb, errors, good = prep.sb, prep.errors, prep.good
    if errors and spec.input.on_error == "fail":
        row = min(errors)
        raise RowErrors(f"input {sb.file}, row {sb.row_offset + row}: {errors[row]}",
                        hint="fix the row, or set input.on_error = 'skip' or 'dead-letter'; "
                             "rows already written are kept")
    faults.hit("infer")
    preds = pipe.predict(prep.values, spec.batching, encoded=prep.encoded)
    batch = sb.batch
    if spec.input.column in keep and prep.decoded is not None:  # decoded CSV text replaces the raw bytes
        batch = batch.set_column(batch.schema.get_field_index(spec.input.column), spec.input.column, prep.decoded)
    good_rows = batch.filter(pa.array(good)) if not good.all() else batch
    table = pa.Table.from_arrays([good_rows.column(c) for c in keep] + [preds[c] for c in names],
                                 names=[*keep, *names.values()])
    dead = None
    failed = len(errors) + len(sb.bad_rows)
    if spec.input.on_error == "dead-letter" and failed:
        text_column = spec.input.column if pipe.task.modality == "text" else None
        dead = _dead_letter(sb, keep, errors, text_column)
    return table, dead, {"failed": failed, "truncated": prep.truncated}


def _dead_letter(sb: SourceBatch, keep: list[str], errors: dict[int, str], text_column: str | None) -> pa.Table:
    rows = sorted(errors)
    taken = sb.batch.take(pa.array(rows, type=pa.int64()))
    columns = {c: lossy_text(taken.column(c)) if c == text_column else taken.column(c) for c in keep}
    table = pa.table({**columns, "_error": pa.array([errors[r] for r in rows], pa.string()),
                      "_source_file": pa.array([sb.file] * len(rows), pa.string()),
                      "_source_row": pa.array([sb.row_offset + r for r in rows], pa.int64())})
    if sb.bad_rows:  # unparseable CSV rows: only the raw line survives
        bad = pa.table({c: pa.nulls(len(sb.bad_rows), table.schema.field(c).type) for c in keep}
                       | {"_error": pa.array([b.error + ": " + b.text for b in sb.bad_rows], pa.string()),
                          "_source_file": pa.array([sb.file] * len(sb.bad_rows), pa.string()),
                          "_source_row": pa.array([b.line for b in sb.bad_rows], pa.int64())})
        table = pa.concat_tables([table, bad.cast(table.schema)])
    return table


def run(job: str | Path | JobSpec | dict, overrides: list[str] = (), *, progress: bool = False,
        if_complete: str = "error") -> RunResult:
    """Run a job from Python (a job file path, a JobSpec, or a dict shaped like a job file).

    Returns the RunResult (rows, failed, truncated, timings, output path; `exit_code` as the CLI would exit);
    raises a BatchinferError subclass, with the CLI's message, when the job cannot run.
    """
    from batchinfer.job import apply_overrides, load_job, parse_job

    if isinstance(job, (str, Path)):
        spec = load_job(job, list(overrides))
    elif isinstance(job, JobSpec):
        spec = parse_job(apply_overrides(job.model_dump(), list(overrides)), source="job")
    else:
        spec = parse_job(apply_overrides(dict(job), list(overrides)), source="job")
    return run_job(spec, progress=progress, if_complete=if_complete)
