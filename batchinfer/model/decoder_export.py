"""A decoder (`*ForCausalLM`) exported with its key/value cache as inputs and outputs, for generation.

Inputs: `input_ids` and `position_ids` (batch, new tokens), `attention_mask` (batch, past + new), and for each
layer `past_key_values.{i}.key` / `.value` (batch, kv heads, past, head dim; past may be 0: the prompt's
step). Outputs: `logits` of the last position only (batch, 1, vocab: the prompt's other positions are never
needed) and `present.{i}.key` / `.value`, the cache after this step. One graph serves the prompt and every
later step; `generation/runtime_lm.py` feeds it.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from batchinfer.model.torch_model import trace_to_onnx


def cache_names(layers: int) -> tuple[list[str], list[str]]:
    """(past input names, present output names), key then value per layer."""
    past = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    return past, [name.replace("past_key_values", "present") for name in past]


def cache_axes(past_names: list[str], present_names: list[str]) -> dict[str, dict[int, str]]:
    """The dynamic axes of the cache: batch, and the past (inputs) or total (outputs) length."""
    return {**{name: {0: "batch", 2: "past"} for name in past_names},
            **{name: {0: "batch", 2: "total"} for name in present_names}}


def cache_shape(config) -> tuple[int, int, int]:
    """(layers, key/value heads, head dim) of a transformers config (GPT-2, Llama, Qwen2, Mistral, Phi...)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    heads = int(text.num_attention_heads)
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // heads)
    return int(text.num_hidden_layers), kv_heads, head_dim


def filled_cache(past, layers: int):
    """A transformers DynamicCache holding `past` (key, value per layer) as they are: no concatenation with an
    empty start, which some converters cannot follow (OpenVINO's)."""
    from transformers.cache_utils import DynamicCache

    cache = DynamicCache()
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:  # transformers < 4.56: the cache holds lists of tensors
        for i in range(layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        return cache
    cache.layers = []
    for i in range(layers):
        layer = DynamicLayer()
        layer.device = past[2 * i].device
        layer.keys, layer.values, layer.is_initialized = past[2 * i], past[2 * i + 1], True
        cache.layers.append(layer)
    return cache


def decoder_step(model, *, embeds: bool = False):
    """The decoder step as a module over positional tensors, with example inputs, for a tracer:
    (module, example args, input names, output names, dynamic axes). With `embeds`, the step takes
    `inputs_embeds` (batch, new, hidden) instead of `input_ids` (a vision-language model merges image features
    into them)."""
    import torch

    layers, kv_heads, head_dim = cache_shape(model.config)
    past_names, present_names = cache_names(layers)
    takes = inspect.signature(model.forward).parameters
    cache_arg = "cache" if "cache" in takes else "past_key_values"
    last_only = {"logits_to_keep": 1} if "logits_to_keep" in takes else {}

    class _Step(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, tokens, attention_mask, position_ids, *past):
            out = self.model(**{first: tokens}, attention_mask=attention_mask, position_ids=position_ids,
                             use_cache=True, **{cache_arg: filled_cache(past, layers)}, **last_only)
            logits = out.logits[:, -1:, :]
            cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            present = []
            for layer in cache.layers:
                present += [layer.keys, layer.values]
            return (logits, *present)

    first = "inputs_embeds" if embeds else "input_ids"
    batch, new, past_len = 2, 3, 4
    hidden = int(model.config.get_text_config().hidden_size) if embeds else 0
    ids = torch.rand((batch, new, hidden)) if embeds else torch.ones((batch, new), dtype=torch.long)
    mask = torch.ones((batch, past_len + new), dtype=torch.long)
    positions = torch.arange(past_len, past_len + new).expand(batch, new)
    past = [torch.rand(batch, kv_heads, past_len, head_dim) for _ in past_names]
    axes = {first: {0: "batch", 1: "new"}, "position_ids": {0: "batch", 1: "new"},
            "attention_mask": {0: "batch", 1: "total"}, "logits": {0: "batch"}}
    axes |= cache_axes(past_names, present_names)
    return (_Step(), (ids, mask, positions, *past), [first, "attention_mask", "position_ids", *past_names],
            ["logits", *present_names], axes)


def export_decoder(model, target: Path, opset: int) -> None:
    module, args, inputs, outputs, axes = decoder_step(model)
    trace_to_onnx(module, args, target, inputs, outputs, axes, opset)
