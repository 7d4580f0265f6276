"""Runtimes, one module each, picked by name from a dispatch table."""

from __future__ import annotations

from pathlib import Path

from batchinfer.backends.base import Backend, default_threads
from batchinfer.errors import ModelError
from batchinfer.model import ModelGraph

BACKENDS = ("ort", "openvino", "ipex", "torch")
ALIASES = {"ov": "openvino", "onnxruntime": "ort", "pytorch": "torch"}


def load_backend(name: str, graph: ModelGraph, *, threads: int = 0, cache_dir: Path,
                 precision: str = "fp32", quantize: str = "none") -> Backend:
    threads = threads or default_threads()
    name = ALIASES.get(name, name)
    if name == "openvino":
        from batchinfer.backends.openvino import OpenVinoBackend

        return OpenVinoBackend(graph, threads=threads, cache_dir=cache_dir, precision=precision, quantize=quantize)
    if name == "ipex":
        from batchinfer.backends.ipex import IpexBackend

        return IpexBackend(graph, threads=threads, precision=precision)
    if name == "ort":
        from batchinfer.backends.ort import OrtBackend

        return OrtBackend(graph, threads=threads, cache_dir=cache_dir, quantize=quantize)
    if name == "torch":
        from batchinfer.backends.pytorch import TorchBackend

        return TorchBackend(graph, threads=threads)
    raise ModelError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")


__all__ = ["ALIASES", "BACKENDS", "Backend", "default_threads", "load_backend"]
