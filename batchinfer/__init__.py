"""batchinfer: batch offline inference on dataframes with accelerated Hugging Face models."""

from __future__ import annotations

import batchinfer.phases  # noqa: F401  (first: it notes when the import began, for `run -v`)

__version__ = "0.1.0"

from batchinfer.errors import BatchinferError, InputError, JobFileError, ModelError, OutputError  # noqa: E402


def __getattr__(name: str):
    """The heavier entry points are imported when first used (`import batchinfer` and the CLI start faster)."""
    if name in ("JobSpec", "load_job"):
        from batchinfer import job

        return getattr(job, name)
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


def _register_with_polars() -> None:
    """`df.infer` / `lf.infer` / `pl.col(...).infer` exist once both batchinfer and polars are imported: now if
    polars is, else right after its import (polars costs a third of `import batchinfer`, the CLI needs none)."""
    import sys

    if "polars" in sys.modules:
        import batchinfer.polars  # noqa: F401
    elif not any(isinstance(f, _AfterPolars) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterPolars())


class _AfterPolars:
    """An import hook that registers batchinfer's polars namespaces once polars has been imported."""

    def find_spec(self, name, path=None, target=None):
        if name != "polars":
            return None
        import importlib.util
        import sys

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            import batchinfer.polars  # noqa: F401

        spec.loader.exec_module = exec_module
        return spec


_register_with_polars()


__all__ = ["BatchinferError", "InputError", "JobFileError", "JobSpec", "ModelError", "OutputError",
           "RunResult", "__version__", "load_job", "pipeline", "predict", "run"]
