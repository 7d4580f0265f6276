"""The transformers model itself, loaded in eval mode: the PyTorch backends run it, the ONNX export traces it."""

from __future__ import annotations

from batchinfer.errors import ModelError
from batchinfer.model.graph import ModelGraph


def load_torch_model(graph: ModelGraph):
    """Load the transformers model for this graph in eval mode (safetensors only unless allowed otherwise)."""
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


def trace_to_onnx(module, args: tuple, target, inputs: list[str], outputs: list[str], axes: dict, opset: int) -> None:
    """Trace `module` on `args` into the ONNX file `target` (TorchScript exporter, constants folded), with
    the dynamic `axes`; the tracer's notes about torch internals are not shown (they are not user input)."""
    import warnings

    import torch

    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(target), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)
