"""The PyTorch reference backend: the transformers model itself, in inference mode."""

from __future__ import annotations

import numpy as np

from batchinfer.backends.base import ModelGraph
from batchinfer.errors import ModelError


def load_torch_model(graph: ModelGraph):
    """Load the transformers model for this graph in eval mode (shared by the backend and the ONNX export)."""
    import transformers

    auto = getattr(transformers, graph.auto_class)
    try:
        model = auto.from_pretrained(str(graph.ref.path), revision=graph.ref.revision,
                                     trust_remote_code=graph.trust_remote_code,
                                     use_safetensors=None if graph.allow_unsafe_weights else True)
    except Exception as exc:
        hint = None
        if not graph.allow_unsafe_weights and not any(graph.ref.path.glob("*.safetensors")):
            hint = ("the folder has no .safetensors weights; convert them, or set model.allow_unsafe_weights = true "
                    "if you trust the pickle (.bin) weights")
        raise ModelError(f"model {graph.ref.name} cannot be loaded as {graph.auto_class}: {exc}", hint=hint) from None
    return model.eval()


class TorchBackend:
    name = "torch"

    def __init__(self, graph: ModelGraph, *, threads: int) -> None:
        import torch

        self._torch = torch
        torch.set_num_threads(threads)
        self.graph = graph
        self.model = load_torch_model(graph)
        self.description = f"torch {torch.__version__} ({threads} threads)"

    def forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        feed = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in inputs.items() if k in self.graph.input_names}
        with torch.inference_mode():
            out = self.model(**feed)
        return {self.graph.output_name: getattr(out, self.graph.output_name).float().numpy()}
