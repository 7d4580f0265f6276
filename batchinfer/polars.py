"""The Python API over polars: `batchinfer.predict(frame, ...)`, `df.infer.predict(...)` and
`pl.col(...).infer.classify(...)` / `.infer.embed(...)`.

Options are exactly the job file's options (one schema): each keyword goes to the job section that has it,
so a job file and a Python call are interchangeable. The same engine runs both.
"""

from __future__ import annotations

import atexit
import difflib
import shutil
import tempfile
import uuid
from typing import Any

import polars as pl
import pyarrow as pa

from batchinfer.errors import JobFileError
from batchinfer.job import BatchingSpec, InputSpec, JobSpec, ModelSpec, OutputSpec, RuntimeSpec, parse_job

_SECTIONS = {"input": InputSpec, "model": ModelSpec, "batching": BatchingSpec, "output": OutputSpec,
             "runtime": RuntimeSpec}
# set by the call's own parameters (`column` maps input roles; `columns=` renames predictions, as in output.columns)
_NOT_OPTIONS = {"input": {"path", "column", "columns", "format", "csv", "storage_options", "table", "catalog",
                          "version", "as_of", "partition_filter", "row_filter"},
                "model": {"name", "task", "options"}, "output": {"path", "storage_options"}}
_IN_MEMORY = "<memory>"  # output.path of a DataFrame predicted without output= (a MemorySink: no folder)
_TEMP_OUTPUTS: list[str] = []  # LazyFrame outputs without output=: scanned by the returned LazyFrames


@atexit.register
def _remove_temp_outputs() -> None:
    """The temporary folders of LazyFrame calls without `output=` live as long as the interpreter (any
    LazyFrame derived from a result may still scan them), and go with it."""
    while _TEMP_OUTPUTS:
        shutil.rmtree(_TEMP_OUTPUTS.pop(), ignore_errors=True)


def _route(options: dict[str, Any], task: str) -> dict[str, dict[str, Any]]:
    """Each keyword to the job section that has it; a task's own options go to the model section."""
    from batchinfer.tasks import canonical_task, option_owners, task_class

    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    for key, value in options.items():
        owner = [name for name, model in _SECTIONS.items()
                 if key in model.model_fields and key not in _NOT_OPTIONS.get(name, ())]
        if not owner and option_owners(key):
            owner = ["model"]  # the model section checks that the option is this task's
        if not owner:
            own = sorted(task_class(task).Options.model_fields) if canonical_task(task) else []
            allowed = sorted({k for name, m in _SECTIONS.items() for k in m.model_fields
                              if k not in _NOT_OPTIONS.get(name, ())} | set(own))
            close = difflib.get_close_matches(key, allowed, n=1)
            guess = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"unknown option {key!r}{guess} Keywords are the job file's options "
                            f"(e.g. on_error='skip'): {', '.join(allowed)}")
        sections[owner[0]][key] = value
    return sections


def job_from_call(column: str | dict[str, str] | None, *, task: str, model: str, backend: str = "ort",
                  output: str | None = None, output_storage_options: dict | None = None, **options: Any) -> JobSpec:
    """The JobSpec a Python call means (validated by the same schema as job files). `column` is the input
    column, or a dict of the task's input roles to columns (e.g. {"text": "query", "text_pair": "passage"}).
    Without `output` the output path is a placeholder (no folder is made): the caller chooses where it goes.
    `mode` defaults to "overwrite" (a job file's to "error")."""
    sections = _route(options, task)
    columns = {} if column is None else {"columns": dict(column)} if isinstance(column, dict) else {"column": column}
    data = {
        "input": {"path": "<frame>", **columns, **sections["input"]},
        "model": {"name": model, "task": task, "backend": backend, **sections["model"]},
        "batching": sections["batching"],
        "output": {"path": output or _IN_MEMORY, "mode": "overwrite",
                   "storage_options": output_storage_options or {}, **sections["output"]},
        "runtime": {"progress": "never", **sections["runtime"]},
    }
    return parse_job(data, source="options")


def predict(frame: pl.DataFrame | pl.LazyFrame | pl.Series, column: str | dict[str, str] | None = None, *,
            task: str, model: str, backend: str = "ort", output: str | None = None,
            output_storage_options: dict[str, Any] | None = None, **options: Any):
    """Add prediction columns to a polars frame; the call runs the whole job before it returns.

    - DataFrame (or Series): returns a DataFrame with the prediction columns, rows in input order. Without
      `output` the job's units are kept in memory (io/memory_sink.py); with `output` the Parquet parts are
      written there too and the DataFrame returned equals reading them. A Series becomes a one-column frame
      (its name, or the task's first input role, e.g. "text", when unnamed) and `column` is not needed.
    - LazyFrame: streams it in batches of `batch_rows` through the model and writes the job's Parquet output
      (exactly once, resumable) at call time, then returns a LazyFrame scanning the written parts. Memory is
      bounded by the batch sizes. Without `output` the parts go to a temporary `batchinfer-*` folder, kept
      while the interpreter runs (a LazyFrame may scan it) and removed at exit; pass `output=` to keep them.
    `mode` is "overwrite" unless given (a job file's default is "error"); `output_storage_options` are the
    output's fsspec options (a job file's `output.storage_options`). Other keywords are job file options
    (top_k, normalize, batch_size, threads, on_error, keep_columns, mode, ...).
    """
    from batchinfer.engine.runner import run_job
    from batchinfer.io.formats import writer_for
    from batchinfer.io.frame_source import FrameSource
    from batchinfer.io.table_sink import TableSink
    from batchinfer.io.layout import parts_glob
    from batchinfer.io.memory_sink import MemorySink

    if isinstance(frame, pl.Series):
        frame, column = _series_frame(frame, column, task)
    if not isinstance(frame, (pl.DataFrame, pl.LazyFrame)):
        raise TypeError(f"predict takes a polars DataFrame, LazyFrame or Series, not {type(frame).__name__}")
    eager = isinstance(frame, pl.DataFrame)
    call = dict(task=task, model=model, backend=backend, output_storage_options=output_storage_options, **options)
    spec = job_from_call(column, output=output, **call)
    table = writer_for(spec.output) if output is not None else None
    if table is not None:
        if spec.output.run_id is None:  # each call is a run of its own (name it with run_id= to retry one)
            call["run_id"] = f"polars-{uuid.uuid4().hex[:16]}"
            spec = job_from_call(column, output=output, **call)
        TableSink(spec.output).check()  # the table can be written in this mode: before any inference
    in_memory = eager and (output is None or table is not None)
    if in_memory and spec.input.on_error == "dead-letter":
        raise JobFileError("on_error = 'dead-letter' needs output= (the dead letters are written beside it)"
                           if output is None else "on_error = 'dead-letter' into a table needs a LazyFrame (or a "
                                                  "job file): a DataFrame's predictions go to the table in one commit")
    if output is None and not eager:  # checked first: a call that cannot run makes no folder
        _TEMP_OUTPUTS.append(tempfile.mkdtemp(prefix="batchinfer-"))
        spec = job_from_call(column, output=_TEMP_OUTPUTS[-1], **call)
    source = FrameSource(frame, batch_rows=spec.input.batch_rows)
    sink = MemorySink() if in_memory else None  # a DataFrame fits in memory: its predictions are kept there
    result = run_job(spec, source=source, sink=sink, progress=False)
    if sink is not None and table is not None:  # the DataFrame's rows, committed to the table as one run
        predicted = sink.table()
        TableSink(spec.output).commit_table(predicted)
        return pl.from_arrow(predicted)
    if sink is not None:
        return pl.from_arrow(sink.table())
    if table is not None:
        return table.scan(spec.output)
    scanned = pl.scan_parquet(parts_glob(result.output_path), storage_options=spec.output.storage_options or None)
    return scanned.collect() if eager else scanned


def _series_frame(series: pl.Series, column: str | dict[str, str] | None, task: str) -> tuple[pl.DataFrame, str]:
    from batchinfer.tasks import task_class

    name = series.name or task_class(task).roles[0]
    if column is not None and column != name:
        raise TypeError(f"predict on a Series reads the Series itself; pass column=None, not {column!r}")
    return series.alias(name).to_frame(), name


@pl.api.register_dataframe_namespace("infer")
class DataFrameInference:
    """`df.infer.predict("text", task=..., model=...)`: `batchinfer.predict` as a DataFrame method."""

    def __init__(self, df: pl.DataFrame) -> None:
        self._df = df

    def predict(self, column: str | dict[str, str] | None = None, **kwargs: Any):
        return predict(self._df, column, **kwargs)


@pl.api.register_lazyframe_namespace("infer")
class LazyFrameInference:
    """`lf.infer.predict("text", task=..., model=..., output=...)`: runs the job now (streamed, written),
    returns a LazyFrame over the written parts."""

    def __init__(self, lf: pl.LazyFrame) -> None:
        self._lf = lf

    def predict(self, column: str | dict[str, str] | None = None, **kwargs: Any):
        return predict(self._lf, column, **kwargs)


@pl.api.register_expr_namespace("infer")
class ExprInference:
    """`pl.col("text").infer.predict(task=..., model=...)`: the task's prediction, as one column's type or a
    struct of its columns. Tasks with a shortcut have a method of that name: `pl.col("text").infer.classify(
    model=...)` gives a struct {label, score}, `.infer.embed(model=...)` an array."""

    def __init__(self, expr: pl.Expr) -> None:
        self._expr = expr

    def predict(self, *, task: str, model: str, backend: str = "ort", **options: Any) -> pl.Expr:
        from batchinfer.pipelines import build_pipeline

        spec = job_from_call("x", task=task, model=model, backend=backend, **options)
        pipe = build_pipeline(spec.model, spec.runtime)
        schema = pipe.task.output_schema()
        dtype = pl.from_arrow(pa.table({f.name: pa.array([], f.type) for f in schema})).schema
        single = schema.names[0] if len(schema) == 1 else None

        def run(series: pl.Series) -> pl.Series:
            columns = pipe.predict(series.to_arrow(), spec.batching)
            if single:
                return pl.Series(series.name, columns[single], dtype=dtype[single])
            return pl.from_arrow(pa.table(columns)).to_struct(series.name)

        return self._expr.map_batches(run, return_dtype=dtype[single] if single else pl.Struct(dtype))

    def __getattr__(self, method: str):
        from batchinfer.tasks import shortcut_task

        task = shortcut_task(method) if not method.startswith("_") else None
        if task is None:
            raise AttributeError(f"'infer' has no method {method!r}; use .infer.predict(task=..., model=...)")

        def shortcut(*, model: str, backend: str = "ort", **options: Any) -> pl.Expr:
            return self.predict(task=task.name, model=model, backend=backend, **options)

        shortcut.__doc__ = f"`.infer.predict(task={task.name!r}, ...)`"
        return shortcut
