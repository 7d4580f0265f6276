"""ONNX Runtime backend: runs the cached ONNX export of the model (or its dynamic int8 version) on the CPU, or
on an NVIDIA GPU through the CUDA execution provider (onnxruntime-gpu)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from batchinfer.backends.base import as_model_dtype
from batchinfer.devices import CPU, Device
from batchinfer.errors import DeviceError
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
    devices = ("cpu", "cuda")
    runs_graphs = True

    def __init__(self, graph: ModelGraph, *, threads: int, cache_dir: Path, precision: str = "fp32",
                 quantize: str = "none", device: Device = CPU) -> None:
        import onnxruntime as ort

        providers = ort_providers(device, ort.get_available_providers(), ort.__version__)
        self.device = device
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
                                                        providers=providers),
            marker=COMPLETE if quantize == "none" else QUANT_COMPLETE, runtime="ONNX Runtime")
        if device.is_gpu and self.session.get_providers()[0] != providers[0][0]:  # ORT falls back without a word
            raise DeviceError(f"runtime.device = '{device}': ONNX Runtime could not start its CUDA provider "
                              f"(the session runs on {', '.join(self.session.get_providers())})",
                              hint="check that the CUDA and cuDNN libraries onnxruntime-gpu needs are installed")
        self._inputs = [i.name for i in self.session.get_inputs()]
        self._outputs = [o.name for o in self.session.get_outputs()]
        self._wanted = [name for name in graph.outputs if name in self._outputs]  # what this model gives
        reduced = "" if quantize == "none" else f", {quantize}"
        where = f"{device}" if device.is_gpu else f"{threads} threads"
        self.description = f"onnxruntime {ort.__version__} ({where}{reduced})"

    def forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {name: as_model_dtype(inputs[name]) for name in self._inputs}
        names = self._outputs if self.graph.with_past else self._wanted  # a decoder step: the key/value cache too
        if not self.device.is_gpu:
            return dict(zip(names, self.session.run(names, feed)))
        binding = self.session.io_binding()  # inputs copied to the GPU once, outputs allocated there
        for name, array in feed.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        for name in names:
            binding.bind_output(name, "cuda", self.device.ordinal)
        self.session.run_with_iobinding(binding)
        return dict(zip(names, binding.copy_outputs_to_cpu()))


def ort_providers(device: Device, available: list[str], version: str = "") -> list:
    """The execution providers for `device`, the CPU's last (ops the GPU provider lacks); DeviceError where this
    onnxruntime has no provider for it."""
    if not device.is_gpu:
        return ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in available:
        raise DeviceError(f"runtime.device = '{device}': this onnxruntime {version} has no CUDA provider (it has "
                          f"{', '.join(available)})",
                          hint='install onnxruntime-gpu in place of onnxruntime: pip install "batchinfer[gpu]"')
    return [("CUDAExecutionProvider", {"device_id": device.ordinal}), "CPUExecutionProvider"]


BACKEND = OrtBackend
