"""Run a job on this machine: check everything, then stream source -> pipeline -> sink, exactly once."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from batchinfer.backends import device_for
from batchinfer.digest import digest
from batchinfer.engine.executors import Units, load_executor
from batchinfer.engine.progress import Progress
from batchinfer.engine.gate import check_on_data
from batchinfer.engine.units import DEAD_LETTER_COLUMNS
from batchinfer.errors import EXIT_OK, EXIT_ROWS_FAILED, JobFileError
from batchinfer.io import ParquetSink, Source, open_sink
from batchinfer.job import JobSpec
from batchinfer.model import ModelRef, default_cache_dir, resolve_model
from batchinfer.phases import describe, phase, recording
from batchinfer.pipelines import Pipeline, build_pipeline

log = logging.getLogger("batchinfer")



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
        """8 when this run left rows out; an output found already complete is a no-op: 0."""
        return EXIT_ROWS_FAILED if self.failed and not self.already_complete else EXIT_OK

    def timings_line(self) -> str:
        """Busy seconds per stage and padding efficiency (-v). The stages overlap (reader, inference and
        writer threads), so their seconds add up to more than the wall time."""
        t = self.timings
        phases = describe(t)
        parts = [f"{words} {t[key]:.2f} s" for key, words in (("imports_s", "imports"), ("job_file_s", "job file"))
                 if key in t]
        parts.append(f"setup {t.get('setup', 0):.1f} s" + (f" ({phases})" if phases else ""))
        if "first_batch_s" in t:
            parts.append(f"first batch {t['first_batch_s']:.2f} s after set-up")
        stages = [f"{stage} {t[f'{stage}_s']:.1f}" for stage in ("read", "tokenize", "infer", "write")
                  if f"{stage}_s" in t]
        if stages:
            parts.append("busy seconds per stage (overlapping): " + ", ".join(stages))
        if "padding_efficiency" in t:
            parts.append(f"padding efficiency {100 * t['padding_efficiency']:.1f}% "
                         f"({t['tokens']:,} real of {t['padded_tokens']:,} padded tokens)")
        return "batchinfer: timings: " + "; ".join(parts) + f"; total {t.get('total', self.seconds):.1f} s"

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
    canonical = spec.model.task_class.columns_for(spec.model.options)
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
    clash = [c for c in keep if c in predictions.values() or c in DEAD_LETTER_COLUMNS]
    if clash:
        raise JobFileError(
            f"output column(s) {', '.join(map(repr, clash))} would hold both an input column and a prediction",
            hint="rename the prediction with [output.columns], e.g. label = 'predicted_label', "
                 "or leave the input column out of output.keep_columns")
    return keep


def check_job(spec: JobSpec, source=None, *, sink=None, allow_complete: bool = False
              ) -> tuple[Source, list[str], dict[str, str], ParquetSink]:
    """Every check that needs neither the model nor a write: the device, input files and columns, names,
    output mode, the executor (e.g. Ray installed).

    `source` replaces the files of `spec.input`, `sink` the output of `spec.output` (io.open_sink). A table
    input without input.version reads the version an interrupted run of this job read (`pinned_version`).
    """
    device_for(spec.model.backend, spec.runtime.device)  # the driver loads the model too (on Ray as well)
    sink = sink or open_sink(spec.output)
    source = source or Source(spec.input, pin=lambda: sink.pinned_version(job_identity(spec)))
    overlap = source.reads_under(sink.fs, sink.root)
    if overlap is not None:
        raise JobFileError(f"output.path {spec.output.path} is where input.path {overlap!r} reads: every run "
                           "would read its own output back as input",
                           hint="write the output outside the input folder (or narrow the input pattern)")
    check_template(spec, source)
    schema = source.check(spec.input.read_columns, spec.output.keep_columns, modality=spec.model.task_class.modality)
    predictions = prediction_names(spec)
    keep = kept_columns(spec, schema, predictions)
    sink.check(allow_complete=allow_complete, plan=lambda: plan_of(spec, source, model_ref(spec)))
    load_executor(spec.runtime.executor).check(spec, source)
    return source, keep, predictions, sink


def check_template(spec: JobSpec, source) -> None:
    """A template naming columns the input does not have is a mistake in the job file."""
    if spec.input.template is None:
        return
    names = source.schema_of(0).names
    missing = [c for c in spec.input.template_columns if c not in names]
    if missing:
        raise JobFileError(f"input.template names column(s) {', '.join(map(repr, missing))}, which input "
                           f"{source.files[0]} does not have; its columns are: {', '.join(names)}",
                           hint="write {column} with the name of a column the input has")


def plan_of(spec: JobSpec, source: Source, ref: ModelRef) -> dict:
    """What makes an output what it is; a resume must match it exactly. `ref`: the resolved model (its content
    hash), from a loaded Pipeline or from `model_ref` (no model loaded)."""
    model = spec.model.model_dump()
    table = {} if getattr(source, "table_version", None) is None else {"table": source.table_version}
    return {
        **table,
        "files": [[path, digest({"size": size, "version": version})] for path, size, version in source.versions()],
        "input": digest(spec.input.model_dump(exclude={"path", "storage_options", "catalog", *_unset_table_keys(spec)})),
        # a change of the kept columns' types would mix schemas in one folder (the text column is decoded)
        "schema": digest({f.name: str(f.type) for f in source.schema if f.name not in spec.input.read_columns}),
        "model": digest({**model, "content": ref.content_hash}),
        "batching": digest(spec.batching.model_dump()),
        "output": digest(spec.output.model_dump(include={"keep_columns", "columns", "compression",
                                                          "compression_level"}
                                                | ({"partition_by"} if spec.output.partition_by else set()))),
    }


def _unset_table_keys(spec: JobSpec) -> set[str]:
    """Table options a job does not use: left out of its plan, which stays what it was before they existed."""
    return {k for k in ("table", "version", "as_of", "partition_filter", "row_filter")
            if getattr(spec.input, k) is None}


def job_identity(spec: JobSpec) -> str:
    """What stays the same across attempts of one job, whatever its input does since: the job file's input,
    model, batching and output settings (not the mode, not the credentials)."""
    return digest({"input": spec.input.model_dump(exclude={"storage_options", "catalog"}),
                   "model": spec.model.model_dump(), "batching": spec.batching.model_dump(),
                   "output": spec.output.model_dump(exclude={"mode", "storage_options", "catalog"})})


def model_ref(spec: JobSpec) -> ModelRef:
    """The job's model resolved to a local folder with its content hash, as a Pipeline would, without loading it."""
    cache = Path(spec.runtime.cache_dir) if spec.runtime.cache_dir else default_cache_dir()
    return resolve_model(spec.model.name, spec.model.revision, cache_dir=cache)


def _fingerprint(ref: ModelRef, plan: dict) -> str:
    return f"{ref.content_hash[:16]}:{plan['model']}"


def _already_complete(spec: JobSpec, source, sink, state, ref: ModelRef, started: float) -> RunResult | None:
    """The RunResult of a complete output if this same job wrote it (its counts from `_SUCCESS`), else None."""
    plan = plan_of(spec, source, ref)
    if sink.resume_conflict(state, plan) is not None or sink.changed_files(state, plan):
        return None
    totals = state.summary or {}
    return RunResult(rows=int(totals.get("rows", 0)), failed=int(totals.get("failed", 0)),
                     truncated=int(totals.get("truncated", 0)), parts=int(totals.get("units", len(state.parts))),
                     seconds=time.perf_counter() - started, output_path=spec.output.path, files=len(source.files),
                     backend=spec.model.backend, already_complete=True, model_fingerprint=_fingerprint(ref, plan),
                     dead_letter=sink.dead_letters if totals.get("failed")
                     and spec.input.on_error == "dead-letter" else None)


def run_job(spec: JobSpec, *, pipeline: Pipeline | None = None, progress: bool | None = None,
            source=None, sink=None, if_complete: str = "error") -> RunResult:
    """Run a job; `source` replaces the files of `spec.input` (the polars API passes a frame), `sink` the
    Parquet folder of `spec.output` (the polars API passes a MemorySink for a DataFrame).

    `if_complete = "skip"`: an output already completed by this same job is left as it is (exit 0), whatever
    the output mode: what a scheduler's retry of a finished task wants.
    """
    with recording() as setup:  # seconds per set-up phase, into the timings
        result = _run_job(spec, pipeline, progress, source, sink, if_complete)
    result.timings.update(setup)
    return result


def _run_job(spec: JobSpec, pipeline: Pipeline | None, progress: bool | None, source, sink,
             if_complete: str) -> RunResult:
    started = time.perf_counter()
    # 1. fail early, before the model and before writing
    with phase("check_s"):
        source, keep, predictions, sink = check_job(spec, source, sink=sink, allow_complete=if_complete == "skip")
    state = sink.inspect() if spec.output.mode in ("resume", "append") or if_complete == "skip" else None
    if state is not None and state.complete:  # finished by this same job? then nothing to load, nothing to do
        finished = _already_complete(spec, source, sink, state, pipeline.ref if pipeline else model_ref(spec),
                                     started)
        if finished is not None:
            return finished
    if pipeline is None:
        log.info("loading model %s (%s on %s)", spec.model.name, spec.model.task, spec.model.backend)
    pipe = pipeline or build_pipeline(spec.model, spec.runtime)
    if pipeline is None:
        log.info("model ready in %.1f s", time.perf_counter() - started)
    predicted = None
    if pipe.backend.reduced:
        with phase("gate_s"):
            predicted = check_on_data(spec, source, pipe)
    ready = time.perf_counter()
    first_rows: list[float] = []

    plan = plan_of(spec, source, pipe.ref)
    fingerprint = _fingerprint(pipe.ref, plan)
    done = sink.open(plan)  # 2. lock, recover, and learn what an earlier run already committed
    try:
        bar = _progress(spec, source, progress, done)  # 3. predict every unit not done, on the chosen executor

        def on_rows(rows: int) -> None:
            if not first_rows:
                first_rows.append(time.perf_counter() - ready)
            bar.update(rows)

        try:
            units = Units(spec, source, keep, predictions, sink, done, predicted)
            result = load_executor(spec.runtime.executor).run(units, pipe=pipe, on_rows=on_rows)
        finally:
            bar.close()
        totals = sink.commit({"model": spec.model.name, "task": spec.model.task, "backend": spec.model.backend,
                              "files": len(source.files), "model_fingerprint": fingerprint})
    finally:
        sink.close()
    seconds = time.perf_counter() - started
    result.update(rows=totals["rows"], failed=totals["failed"], truncated=totals["truncated"],
                  parts=totals["units"])
    stages = result.pop("timings", {})  # busy seconds per stage (an executor may not measure them)
    dead = sink.dead_letters if totals["failed"] and spec.input.on_error == "dead-letter" else None
    return RunResult(seconds=seconds, output_path=spec.output.path, files=len(source.files),
                     backend=spec.model.backend, skipped_units=len(done), model_fingerprint=fingerprint,
                     dead_letter=dead,
                     timings={"setup": round(ready - started, 3), **stages, "total": round(seconds, 3),
                              **({"first_batch_s": round(first_rows[0], 3)} if first_rows else {})},
                     **result)


def _progress(spec: JobSpec, source, progress: bool | None, done: dict[str, dict]) -> Progress:
    """The bar on a terminal, else progress log lines every runtime.progress_interval seconds. It starts at
    the rows of the units an earlier run committed; the rate counts this run's rows only."""
    if progress is None:
        progress = spec.runtime.progress == "always" or (spec.runtime.progress == "auto" and sys.stderr.isatty())
    before = sum(int(entry.get("rows", 0)) + int(entry.get("failed", 0)) for entry in done.values())
    return Progress(source.total_rows(), enabled=progress, interval=spec.runtime.progress_interval,
                    done_before=before, estimate=source.rows_estimate)


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
