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
_NOT_OPTIONS = {"path", "name", "task", "column", "format", "csv", "storage_options"}
_IN_MEMORY = "<memory>"  # output.path of a DataFrame predicted without output= (a MemorySink: no folder)


def _route(options: dict[str, Any]) -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    for key, value in options.items():
        owner = [name for name, model in _SECTIONS.items() if key in model.model_fields and key not in _NOT_OPTIONS]
        if not owner:
            allowed = sorted({k for m in _SECTIONS.values() for k in m.model_fields} - _NOT_OPTIONS)
            raise TypeError(f"unknown option {key!r}; the job file's options are: {', '.join(allowed)}")
        sections[owner[0]][key] = value
    return sections


def job_from_call(column: str, *, task: str, model: str, backend: str = "ort", output: str | None = None,
                  output_storage_options: dict | None = None, **options: Any) -> JobSpec:
    """The JobSpec a Python call means (validated by the same schema as job files)."""
    sections = _route(options)
    data = {
        "input": {"path": "<frame>", "column": column, **sections["input"]},
        "model": {"name": model, "task": task, "backend": backend, **sections["model"]},
        "batching": sections["batching"],
        "output": {"path": output or tempfile.mkdtemp(prefix="batchinfer-"), "mode": "overwrite",
                   "storage_options": output_storage_options or {}, **sections["output"]},
        "runtime": {"progress": "never", **sections["runtime"]},
    }
    return parse_job(data, source="options")


def predict(frame: pl.DataFrame | pl.LazyFrame, column: str, *, task: str, model: str, backend: str = "ort",
            output: str | None = None, **options: Any):
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

    def predict(self, column: str, **kwargs: Any):
        return predict(self._df, column, **kwargs)


@pl.api.register_lazyframe_namespace("infer")
class LazyFrameInference:
    """`lf.infer.predict("text", task=..., model=..., output=...)`: streams and writes, returns a LazyFrame."""

    def __init__(self, lf: pl.LazyFrame) -> None:
        self._lf = lf

    def predict(self, column: str, **kwargs: Any):
        return predict(self._lf, column, **kwargs)


@pl.api.register_expr_namespace("infer")
class ExprInference:
    """`pl.col("text").infer.classify(model=...)` gives a struct {label, score}; `.infer.embed(model=...)` an array."""

    def __init__(self, expr: pl.Expr) -> None:
        self._expr = expr

    def _map(self, task: str, model: str, backend: str, options: dict[str, Any]) -> pl.Expr:
        from batchinfer.pipelines import build_pipeline

        spec = job_from_call("x", task=task, model=model, backend=backend, **options)
        pipe = build_pipeline(spec.model, spec.runtime)
        schema = pipe.task.output_schema()
        dtype = pl.from_arrow(pa.table({f.name: pa.array([], f.type) for f in schema})).schema

        def run(series: pl.Series) -> pl.Series:
            columns = pipe.predict(series.to_arrow(), spec.batching)
            if task == "feature-extraction":
                return pl.Series(series.name, columns["embedding"], dtype=dtype["embedding"])
            return pl.from_arrow(pa.table(columns)).to_struct(series.name)

        return_dtype = dtype["embedding"] if task == "feature-extraction" else pl.Struct(dtype)
        return self._expr.map_batches(run, return_dtype=return_dtype)

    def classify(self, *, model: str, backend: str = "ort", **options: Any) -> pl.Expr:
        return self._map("text-classification", model, backend, options)

    def embed(self, *, model: str, backend: str = "ort", **options: Any) -> pl.Expr:
        return self._map("feature-extraction", model, backend, options)
