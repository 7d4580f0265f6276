"""An encoder-decoder model (`*ForConditionalGeneration`: T5, BART, Marian) exported as two graphs, for
generation: its encoder, and one decoder step with the decoder's own key/value cache.

Encoder: `input_ids`, `attention_mask` -> `last_hidden_state`. Decoder step: `decoder_input_ids` (batch, new),
`encoder_hidden_states`, `encoder_attention_mask` and per layer `past_key_values.{i}.key` / `.value`
(batch, heads, past, head dim; past may be 0) -> `logits` of the last position and `present.{i}.key` /
`.value`. The cross-attention keys and values are recomputed from the encoder states at each step (no
second cache to carry). `generation/runtime_lm.py` feeds both.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from batchinfer.model.decoder_export import cache_axes, cache_names
from batchinfer.model.torch_model import trace_to_onnx


def decoder_cache_shape(config) -> tuple[int, int, int]:
    """(decoder layers, heads, head dim) of an encoder-decoder config (T5: d_kv; BART/Marian: d_model/heads)."""
    layers = int(getattr(config, "num_decoder_layers", None) or getattr(config, "decoder_layers", None)
                 or config.num_hidden_layers)
    heads = int(getattr(config, "decoder_attention_heads", None) or config.num_attention_heads)
    head_dim = int(getattr(config, "d_kv", None) or config.d_model // heads)
    return layers, heads, head_dim


def export_encoder(model, target: Path, opset: int) -> None:
    import torch

    encoder = model.get_encoder()

    class _Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.ones((2, 5), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask", "last_hidden_state")}
    trace_to_onnx(_Encoder(), (ids, torch.ones_like(ids)), target, ["input_ids", "attention_mask"], ["last_hidden_state"],
            axes, opset)


def export_decoder_step(model, target: Path, opset: int) -> None:
    import torch
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    layers, heads, head_dim = decoder_cache_shape(model.config)
    past_names, present_names = cache_names(layers)
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    class _Step(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, decoder_input_ids, encoder_hidden_states, encoder_attention_mask, *past):
            own = DynamicCache()
            for i in range(layers):
                own.update(past[2 * i], past[2 * i + 1], i)
            cache = EncoderDecoderCache(own, DynamicCache())
            out = self.model(encoder_outputs=(encoder_hidden_states,), attention_mask=encoder_attention_mask,
                             decoder_input_ids=decoder_input_ids, use_cache=True, **{cache_arg: cache})
            cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            present = []
            for layer in cache.self_attention_cache.layers:
                present += [layer.keys, layer.values]
            return (out.logits[:, -1:, :], *present)

    batch, new, past_len, source = 2, 2, 3, 5
    hidden = int(getattr(model.config, "d_model", None) or model.config.hidden_size)
    args = (torch.ones((batch, new), dtype=torch.long), torch.rand(batch, source, hidden),
            torch.ones((batch, source), dtype=torch.long),
            *(torch.rand(batch, heads, past_len, head_dim) for _ in past_names))
    axes = {"decoder_input_ids": {0: "batch", 1: "new"}, "encoder_hidden_states": {0: "batch", 1: "source"},
            "encoder_attention_mask": {0: "batch", 1: "source"}, "logits": {0: "batch"}}
    axes |= cache_axes(past_names, present_names)
    inputs = ["decoder_input_ids", "encoder_hidden_states", "encoder_attention_mask", *past_names]
    trace_to_onnx(_Step(), args, target, inputs, ["logits", *present_names], axes, opset)

