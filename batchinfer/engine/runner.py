"""Run a job on this machine: check everything, then stream source -> pipeline -> sink."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

import pyarrow as pa

from batchinfer.engine.progress import Progress
from batchinfer.errors import InputError, JobFileError
from batchinfer.io import ParquetSink, Source
from batchinfer.job import JobSpec
from batchinfer.pipeline import Pipeline, build_pipeline

log = logging.getLogger("batchinfer")

PREDICTION_COLUMNS = {"text-classification": ("label", "score"), "feature-extraction": ("embedding",)}


@dataclass
class RunResult:
    rows: int
    seconds: float
    output_path: str
    parts: int
    files: int
    backend: str
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def summary_line(self) -> str:
        return (f"batchinfer: {self.rows:,} rows in {self.seconds:.1f} s "
                f"({self.rows_per_second:,.1f} rows/s) -> {self.output_path}")


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


def _kept_columns(spec: JobSpec, schema: pa.Schema, predictions: dict[str, str]) -> list[str]:
    keep = spec.output.keep_columns if spec.output.keep_columns is not None else list(schema.names)
    clash = [c for c in keep if c in predictions.values()]
    if clash:
        raise JobFileError(
            f"output column(s) {', '.join(map(repr, clash))} would hold both an input column and a prediction",
            hint="rename the prediction with [output.columns], e.g. label = 'predicted_label', "
                 "or leave the input column out of output.keep_columns")
    return keep


def run_job(spec: JobSpec, *, pipeline: Pipeline | None = None, progress: bool | None = None) -> RunResult:
    started = time.perf_counter()
    # 1. everything that can fail before inference
    source = Source(spec.input)
    schema = source.check(spec.input.column, spec.output.keep_columns)
    predictions = prediction_names(spec)
    keep = _kept_columns(spec, schema, predictions)
    read_columns = list(dict.fromkeys([*keep, spec.input.column]))
    sink = ParquetSink(spec.output)
    sink.start()
    pipe = pipeline or build_pipeline(spec.model, spec.runtime)
    ready = time.perf_counter()
    log.info("input: %d file(s); output: %s", len(source.files), spec.output.path)

    # 2. stream
    if progress is None:
        progress = spec.runtime.progress == "always" or (spec.runtime.progress == "auto" and sys.stderr.isatty())
    bar = Progress(source.total_rows(), enabled=progress)
    seen_files: set[int] = set()
    infer_seconds = 0.0
    for sb in source.batches(read_columns, spec.input.column):
        t0 = time.perf_counter()
        preds = pipe.predict(sb.batch.column(spec.input.column), spec.batching)
        infer_seconds += time.perf_counter() - t0
        sink.write(sb.file_index, sb.batch_index, _output_table(sb.batch, keep, preds, predictions, sb.file))
        seen_files.add(sb.file_index)
        bar.update(sb.batch.num_rows)
    for i, path in enumerate(source.files):  # an empty file still gets a part, so the schema is known
        if i not in seen_files:
            schema = source.schema_of(i)
            empty = pa.RecordBatch.from_pylist([], schema=pa.schema([schema.field(c) for c in read_columns]))
            sink.write(i, 0, _output_table(empty, keep, pipe.predict([]), predictions, path))
    bar.close()
    seconds = time.perf_counter() - started
    timings = {"setup": round(ready - started, 3), "inference": round(infer_seconds, 3), "total": round(seconds, 3)}
    result = RunResult(rows=sink.rows, seconds=seconds, output_path=spec.output.path, parts=len(sink.parts),
                       files=len(source.files), backend=spec.model.backend, timings=timings)
    sink.commit({"model": spec.model.name, "task": spec.model.task, "backend": spec.model.backend,
                 "timings": timings})
    return result


def _output_table(batch: pa.RecordBatch, keep: list[str], preds: dict[str, pa.Array],
                  names: dict[str, str], file: str) -> pa.Table:
    try:
        columns = [batch.column(c) for c in keep] + [preds[c] for c in names]
    except KeyError as exc:
        raise InputError(f"input {file} has no column {exc}") from None
    return pa.Table.from_arrays(columns, names=[*keep, *names.values()])
