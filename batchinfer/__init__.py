"""batchinfer: batch offline inference on dataframes with accelerated Hugging Face models."""

from __future__ import annotations

__version__ = "0.1.0"

from batchinfer.errors import BatchinferError, InputError, JobFileError, ModelError, OutputError  # noqa: E402
from batchinfer.job import JobSpec, load_job  # noqa: E402


def __getattr__(name: str):
    """`batchinfer.pipeline` imports the model stack only when first used."""
    if name == "pipeline":
        from batchinfer.transformers_compat import pipeline

        return pipeline
    raise AttributeError(f"module 'batchinfer' has no attribute {name!r}")


__all__ = ["BatchinferError", "InputError", "JobFileError", "JobSpec", "ModelError", "OutputError",
           "__version__", "load_job", "pipeline"]
