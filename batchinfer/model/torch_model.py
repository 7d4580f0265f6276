"""The transformers model itself, loaded in eval mode: the PyTorch backends run it, the ONNX export traces it."""

from __future__ import annotations

from batchinfer.errors import ModelError
from batchinfer.model.graph import ModelGraph


def load_torch_model(graph: ModelGraph, *, attention: str | None = None):
    """Load the transformers model for this graph in eval mode (safetensors only unless allowed otherwise);
    `attention`: the attention implementation to load it with (transformers' `attn_implementation`)."""
    import transformers

    auto = getattr(transformers, graph.auto_class)
    tower = not graph.auto_class.startswith("Auto")  # one tower of a model (CLIP's): the rest is left out
    verbosity = transformers.logging.get_verbosity()
    if tower:  # on purpose, so transformers' report of the weights it leaves out is not shown
        transformers.logging.set_verbosity_error()
    try:
        model, info = auto.from_pretrained(str(graph.ref.path), revision=graph.ref.revision,
                                           trust_remote_code=graph.trust_remote_code,
                                           use_safetensors=None if graph.allow_unsafe_weights else True,
                                           output_loading_info=True,
                                           **({"attn_implementation": attention} if attention else {}))
    except Exception as exc:
        hint = None
        if not graph.allow_unsafe_weights and not any(graph.ref.path.glob("*.safetensors")):
            hint = ("the folder has no .safetensors weights; convert them, or set model.allow_unsafe_weights = true "
                    "if you trust the pickle (.bin) weights")
        raise ModelError(f"model {graph.ref.name} cannot be loaded as {graph.auto_class}: {exc}", hint=hint) from None
    finally:
        transformers.logging.set_verbosity(verbosity)
    model.batchinfer_untrained = {key.split(".")[0] for key in info.get("missing_keys", ())}
    return model.eval()


def trained_extras(model, graph: ModelGraph) -> tuple[str, ...]:
    """The graph's extra outputs whose layers the checkpoint holds: `pooler_output` of a ViT saved without its
    pooler would come from randomly initialised weights, so it is left out (and the task pools otherwise)."""
    untrained = getattr(model, "batchinfer_untrained", set())
    return tuple(name for name in graph.extra_outputs if name.removesuffix("_output") not in untrained)


def trace_to_onnx(module, args: tuple, target, inputs: list[str], outputs: list[str], axes: dict, opset: int) -> None:
    """Trace `module` on `args` into the ONNX file `target` (TorchScript exporter, constants folded), with
    the dynamic `axes`; the tracer's notes about torch internals are not shown (they are not user input)."""
    import warnings

    import torch

    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), args, str(target), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)
