"""ONNX Runtime backend: runs the cached ONNX export of the model on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from batchinfer.model import ModelGraph
from batchinfer.model.cache_folder import load_cached
from batchinfer.model.onnx_export import COMPLETE, export_onnx
from batchinfer.model.quantize import QUANT_COMPLETE, quantize_onnx


class OrtBackend:
    name = "ort"

    def __init__(self, graph: ModelGraph, *, threads: int, cache_dir: Path, quantize: str = "none") -> None:
        import onnxruntime as ort

        self.graph = graph
        self.quantize = quantize
        self.reduced = None if quantize == "none" else quantize  # answers then checked against fp32
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

        def artifact(broken: str | None) -> Path:
            if quantize == "none":
                return export_onnx(graph, cache_dir, broken=broken)
            return quantize_onnx(graph, cache_dir, broken=broken)

        self.onnx_path, self.session = load_cached(
            artifact, lambda path: ort.InferenceSession(str(path), sess_options=options,
                                                        providers=["CPUExecutionProvider"]),
            marker=COMPLETE if quantize == "none" else QUANT_COMPLETE, runtime="ONNX Runtime")
        self.artifact = self.onnx_path.parent
        self._inputs = [i.name for i in self.session.get_inputs()]
        precision = "" if quantize == "none" else f", {quantize}"
        self.description = f"onnxruntime {ort.__version__} ({threads} threads{precision})"

    def forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {name: _as_model_dtype(inputs[name]) for name in self._inputs}
        (out,) = self.session.run([self.graph.output_name], feed)
        return {self.graph.output_name: out}


def _as_model_dtype(array: np.ndarray) -> np.ndarray:
    """Token ids and masks as int64, pixels as float32: what torch.onnx exported."""
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    return array.astype(np.int64, copy=False)
