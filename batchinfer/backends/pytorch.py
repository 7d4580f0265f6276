"""The PyTorch reference backend: the transformers model itself, in inference mode, on the CPU or a CUDA GPU
(fp16 there, gated against fp32)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from batchinfer.devices import CPU, Device
from batchinfer.errors import DeviceError, ModelError
from batchinfer.model import ModelGraph
from batchinfer.model.torch_model import load_torch_model, trained_extras


class TorchBackend:
    name = "torch"
    aliases = ("pytorch",)
    requires = "torch"
    install_hint = "pip install torch (the CPU wheel: --index-url https://download.pytorch.org/whl/cpu)"
    precisions = ("fp32", "fp16")  # fp16: on a GPU
    quantizations = ("none",)
    modalities = ("text", "image", "audio")
    devices = ("cpu", "cuda")
    runs_graphs = False
    artifact = None  # the model runs in-process from its folder

    def __init__(self, graph: ModelGraph, *, threads: int, cache_dir: Path | None = None, precision: str = "fp32",
                 quantize: str = "none", device: Device = CPU) -> None:
        import torch

        self._torch = torch
        torch.set_num_threads(threads)
        if device.is_gpu and not torch.cuda.is_available():
            raise DeviceError(f"runtime.device = '{device}': torch {torch.__version__} here cannot use a CUDA GPU"
                              + (" (a CPU build)" if torch.version.cuda is None else ""),
                              hint="install a CUDA build of torch, or use runtime.device = 'cpu'")
        if precision == "fp16" and not device.is_gpu:
            raise ModelError("precision = 'fp16' runs on a GPU: set runtime.device = 'cuda'",
                             hint="on the CPU use precision = 'bf16' with the openvino backend")
        self.graph = graph
        self.reduced = None if precision == "fp32" else precision  # answers then checked against fp32
        self._device = torch.device("cuda", device.ordinal) if device.is_gpu else torch.device("cpu")
        self.model = load_torch_model(graph).to(self._device)
        if self.reduced:
            self.model = self.model.half()
        self._outputs = (graph.output_name, *trained_extras(self.model, graph))
        where = str(device) if device.is_gpu else f"{threads} threads"
        self.description = f"torch {torch.__version__} ({where}{', ' + self.reduced if self.reduced else ''})"

    def forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        feed = {k: self._tensor(v) for k, v in inputs.items() if k in self.graph.input_names}
        with torch.inference_mode():
            out = self.model(**feed)
        return {name: getattr(out, name).float().cpu().numpy() for name in self._outputs
                if getattr(out, name, None) is not None}


    def _tensor(self, array: np.ndarray):
        """An input on the model's device; pixels and audio in the model's dtype."""
        tensor = self._torch.from_numpy(np.ascontiguousarray(array))
        if tensor.is_floating_point() and self.reduced:
            tensor = tensor.to(self._torch.float16)
        return tensor.to(self._device)


BACKEND = TorchBackend
