"""Versions of the libraries that shape a run's answers, for summaries and bug reports."""

from __future__ import annotations

from importlib import metadata

PACKAGES = ("batchinfer", "torch", "transformers", "tokenizers", "onnxruntime", "openvino", "pyarrow", "polars")


def versions() -> dict[str, str]:
    return {package: found for package in PACKAGES if (found := version_of(package)) is not None}


def version_of(package: str) -> str | None:
    """An installed package's version, read from its metadata without importing it (torch takes 1.6 s)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
