"""Versions of the libraries that shape a run's answers, for summaries and bug reports."""

from __future__ import annotations

from importlib import metadata

PACKAGES = ("batchinfer", "torch", "transformers", "tokenizers", "onnxruntime", "openvino", "pyarrow", "polars")


def versions() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return found
