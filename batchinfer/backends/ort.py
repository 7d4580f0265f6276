"""ONNX Runtime backend: runs the cached ONNX export of the model (or its dynamic int8 version) on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from batchinfer.backends.base import as_model_dtype
from batchinfer.model import ModelGraph
from batchinfer.model.cache_folder import load_cached
from batchinfer.model.onnx_export import COMPLETE, export_onnx
from batchinfer.model.quantize import QUANT_COMPLETE, quantize_onnx


class OrtBackend:
    name = "ort"
    aliases = ("onnxruntime",)
    requires = "onnxruntime"
    install_hint = "pip install onnxruntime"
    precisions = ("fp32",)
    quantizations = ("none", "dynamic-int8")
    modalities = ("text", "image", "audio")
    runs_graphs = True

    def __init__(self, graph: ModelGraph, *, threads: int, cache_dir: Path, precision: str = "fp32",
                 quantize: str = "none") -> None:
        import onnxruntime as ort

        self.graph = graph
        self.reduced = None if quantize == "none" else quantize  # answers then checked against fp32
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

        def artifact(broken: str | None) -> Path:
            if quantize == "none":
                return export_onnx(graph, cache_dir, broken=broken)
            return quantize_onnx(graph, cache_dir, broken=broken)

        self.artifact, self.session = load_cached(
            artifact, lambda path: ort.InferenceSession(str(path), sess_options=options,
                                                        providers=["CPUExecutionProvider"]),
            marker=COMPLETE if quantize == "none" else QUANT_COMPLETE, runtime="ONNX Runtime")
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._outputs = [o.name for o in self.session.get_outputs()]
        self._wanted = [name for name in graph.outputs if name in self._outputs]  # what this model gives
        reduced = "" if quantize == "none" else f", {quantize}"
        self.description = f"onnxruntime {ort.__version__} ({threads} threads{reduced})"

    def forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {name: as_model_dtype(inputs[name]) for name in self._inputs}
        if self.graph.with_past:  # a decoder step: logits and the key/value cache
            return dict(zip(self._outputs, self.session.run(self._outputs, feed)))
        return dict(zip(self._wanted, self.session.run(self._wanted, feed)))


BACKEND = OrtBackend
