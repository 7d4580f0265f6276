"""batchinfer: batch offline inference on dataframes with accelerated Hugging Face models."""

from __future__ import annotations

__version__ = "0.1.0"

from batchinfer.errors import BatchinferError, InputError, JobFileError, ModelError, OutputError  # noqa: E402
from batchinfer.job import JobSpec, load_job  # noqa: E402


def __getattr__(name: str):
    """The heavier entry points are imported when first used (the CLI starts faster)."""
    if name == "pipeline":
        from batchinfer.transformers_compat import pipeline

        return pipeline
    if name == "predict":
        from batchinfer.polars import predict

        return predict
    if name in ("run", "RunResult"):
        from batchinfer.engine import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'batchinfer' has no attribute {name!r}")


try:  # registers df.infer / lf.infer / pl.col(...).infer when polars is installed
    import batchinfer.polars  # noqa: E402,F401
except ImportError:  # pragma: no cover
    pass


__all__ = ["BatchinferError", "InputError", "JobFileError", "JobSpec", "ModelError", "OutputError",
           "RunResult", "__version__", "load_job", "pipeline", "predict", "run"]
