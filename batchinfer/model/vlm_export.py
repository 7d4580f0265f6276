"""A vision-language model (LLaVA-style: an image tower, a projector, a decoder-only language model) exported
as three graphs, for generation: `vision` (`pixel_values` -> `image_features`, batch x image tokens x hidden:
the projected features that take the place of the prompt's image tokens), `embed` (`input_ids` ->
`inputs_embeds`) and `lm`, the language model's step over `inputs_embeds` and its key/value cache
(`decoder_export.decoder_step`). `generation/runtime_lm.py` merges and feeds them.
"""

from __future__ import annotations

from pathlib import Path

from batchinfer.model.decoder_export import decoder_step
from batchinfer.model.torch_model import trace_to_onnx

PARTS = ("vision", "embed", "lm")


def is_vlm(config: dict) -> bool:
    """A config of an image tower plus a language model whose prompt holds image tokens (LLaVA-style)."""
    return bool(config.get("vision_config") and config.get("text_config")
                and config.get("image_token_id", config.get("image_token_index")) is not None)


def export_vision(model, target: Path, opset: int, image_shape: tuple[int, int, int]) -> None:
    import torch

    config = model.config
    base = getattr(model, "model", model)  # LLaVA's image tower and projector (get_image_features' steps, batched)
    layer, strategy = config.vision_feature_layer, config.vision_feature_select_strategy

    class _Vision(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tower, self.projector = base.vision_tower, base.multi_modal_projector

        def forward(self, pixel_values):
            states = self.tower(pixel_values, output_hidden_states=True, return_dict=True).hidden_states
            chosen = [states[i] for i in (layer if isinstance(layer, (list, tuple)) else [layer])]
            if strategy == "default":  # without the CLS token
                chosen = [s[:, 1:] for s in chosen]
            return self.projector(torch.cat(chosen, dim=-1))

    axes = {"pixel_values": {0: "batch"}, "image_features": {0: "batch"}}
    trace_to_onnx(_Vision(), (torch.rand(2, *image_shape),), target, ["pixel_values"], ["image_features"], axes,
                  opset)


def export_embed(model, target: Path, opset: int) -> None:
    import torch

    embeddings = model.get_input_embeddings()

    class _Embed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = embeddings

        def forward(self, input_ids):
            return self.embeddings(input_ids)

    axes = {"input_ids": {0: "batch", 1: "new"}, "inputs_embeds": {0: "batch", 1: "new"}}
    trace_to_onnx(_Embed(), (torch.ones((2, 3), dtype=torch.long),), target, ["input_ids"], ["inputs_embeds"], axes,
                  opset)


def export_lm_step(model, target: Path, opset: int) -> None:
    module, args, inputs, outputs, axes = decoder_step(model, embeds=True)
    trace_to_onnx(module, args, target, inputs, outputs, axes, opset)
