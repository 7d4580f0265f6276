"""The Python API over polars: `batchinfer.predict(frame, ...)`, `df.infer.predict(...)` and
`pl.col(...).infer.classify(...)` / `.infer.embed(...)`.

Options are exactly the job file's options (one schema): each keyword goes to the job section that has it,
so a job file and a Python call are interchangeable. The same engine runs both.
"""

from __future__ import annotations

import tempfile
from typing import Any

import polars as pl
import pyarrow as pa

from batchinfer.errors import JobFileError
from batchinfer.job import BatchingSpec, InputSpec, JobSpec, ModelSpec, OutputSpec, RuntimeSpec, parse_job

_SECTIONS = {"input": InputSpec, "model": ModelSpec, "batching": BatchingSpec, "output": OutputSpec,
             "runtime": RuntimeSpec}
# set by the call's own parameters (`column` maps input roles; `columns=` renames predictions, as in output.columns)
_NOT_OPTIONS = {"input": {"path", "column", "columns", "format", "csv", "storage_options"},
                "model": {"name", "task", "options"}, "output": {"path", "storage_options"}}
_IN_MEMORY = "<memory>"  # output.path of a DataFrame predicted without output= (a MemorySink: no folder)


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
            raise TypeError(f"unknown option {key!r}; the job file's options are: {', '.join(allowed)}")
        sections[owner[0]][key] = value
    return sections


def job_from_call(column: str | dict[str, str] | None, *, task: str, model: str, backend: str = "ort",
                  output: str | None = None, output_storage_options: dict | None = None, **options: Any) -> JobSpec:
    """The JobSpec a Python call means (validated by the same schema as job files). `column` is the input
    column, or a dict of the task's input roles to columns (e.g. {"text": "query", "text_pair": "passage"})."""
    sections = _route(options, task)
    columns = {} if column is None else {"columns": dict(column)} if isinstance(column, dict) else {"column": column}
    data = {
        "input": {"path": "<frame>", **columns, **sections["input"]},
        "model": {"name": model, "task": task, "backend": backend, **sections["model"]},
        "batching": sections["batching"],
        "output": {"path": output or tempfile.mkdtemp(prefix="batchinfer-"), "mode": "overwrite",
                   "storage_options": output_storage_options or {}, **sections["output"]},
        "runtime": {"progress": "never", **sections["runtime"]},
    }
    return parse_job(data, source="options")


def predict(frame: pl.DataFrame | pl.LazyFrame, column: str | dict[str, str] | None = None, *, task: str,
            model: str, backend: str = "ort", output: str | None = None, **options: Any):
    """Add prediction columns to a polars frame.

    - DataFrame, no `output`: returns the DataFrame with the prediction columns (rows in input order); the
      same job run, its units kept in memory (io/memory_sink.py) instead of written.
    - LazyFrame (or any frame with `output=`): streams it in batches of `batch_rows` through the model,
      writes the job's Parquet output (exactly once, resumable) and returns a LazyFrame scanning it. Memory is
      bounded by the batch sizes; without `output` the parts go to a temporary folder.
    Other keywords are job file options (top_k, normalize, batch_size, threads, on_error, keep_columns, ...).
    """
    from batchinfer.engine.runner import run_job
    from batchinfer.io.frame_source import FrameSource
    from batchinfer.io.layout import parts_glob
    from batchinfer.io.memory_sink import MemorySink

    if not isinstance(frame, (pl.DataFrame, pl.LazyFrame)):
        raise TypeError(f"predict takes a polars DataFrame or LazyFrame, not {type(frame).__name__}")
    in_memory = isinstance(frame, pl.DataFrame) and output is None
    spec = job_from_call(column, task=task, model=model, backend=backend,
                         output=_IN_MEMORY if in_memory else output, **options)
    if in_memory and spec.input.on_error == "dead-letter":
        raise JobFileError("on_error = 'dead-letter' needs output= (the dead letters are written beside it)")
    source = FrameSource(frame, batch_rows=spec.input.batch_rows)
    sink = MemorySink() if in_memory else None  # a DataFrame fits in memory: its predictions are kept there
    result = run_job(spec, source=source, sink=sink, progress=False)
    if sink is not None:
        return pl.from_arrow(sink.table())
    return pl.scan_parquet(parts_glob(result.output_path), storage_options=spec.output.storage_options or None)


@pl.api.register_dataframe_namespace("infer")
class DataFrameInference:
    """`df.infer.predict("text", task=..., model=...)`: `batchinfer.predict` as a DataFrame method."""

    def __init__(self, df: pl.DataFrame) -> None:
        self._df = df

    def predict(self, column: str | dict[str, str] | None = None, **kwargs: Any):
        return predict(self._df, column, **kwargs)


@pl.api.register_lazyframe_namespace("infer")
class LazyFrameInference:
    """`lf.infer.predict("text", task=..., model=..., output=...)`: streams and writes, returns a LazyFrame."""

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
