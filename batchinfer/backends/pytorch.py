"""The PyTorch reference backend: the transformers model itself, in inference mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from batchinfer.model import ModelGraph
from batchinfer.model.torch_model import load_torch_model, trained_extras


class TorchBackend:
    name = "torch"
    aliases = ("pytorch",)
    requires = "torch"
    install_hint = "pip install torch (the CPU wheel: --index-url https://download.pytorch.org/whl/cpu)"
    precisions = ("fp32",)
    quantizations = ("none",)
    modalities = ("text", "image", "audio")
    runs_graphs = False
    artifact = None  # the model runs in-process from its folder
    reduced = None

    def __init__(self, graph: ModelGraph, *, threads: int, cache_dir: Path | None = None, precision: str = "fp32",
                 quantize: str = "none") -> None:
        import torch

        self._torch = torch
        torch.set_num_threads(threads)
        self.graph = graph
        self.model = load_torch_model(graph)
        self._outputs = (graph.output_name, *trained_extras(self.model, graph))
        self.description = f"torch {torch.__version__} ({threads} threads)"

    def forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        feed = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items() if k in self.graph.input_names}
        with torch.inference_mode():
            out = self.model(**feed)
        return {name: getattr(out, name).float().numpy() for name in self._outputs
                if getattr(out, name, None) is not None}


BACKEND = TorchBackend
