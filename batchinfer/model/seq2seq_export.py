"""An encoder-decoder model (`*ForConditionalGeneration`: T5, BART, Marian) exported as three graphs, for
generation: its encoder, the decoder's cross-attention keys and values of the encoder states, and one decoder
step over both caches.

Encoder: `input_ids`, `attention_mask` -> `last_hidden_state`. Cross: `encoder_hidden_states` -> per layer
`cross.{i}.key` / `.value` (batch, heads, source, head dim), computed once per row. Decoder step:
`decoder_input_ids` (batch, new), `encoder_attention_mask`, per layer `past_key_values.{i}.key` / `.value`
(batch, heads, past, head dim; past may be 0) and the cross keys and values -> `logits` of the last position
and `present.{i}.key` / `.value`. `generation/runtime_lm.py` feeds them.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from batchinfer.model.decoder_export import cache_axes, cache_names, filled_cache
from batchinfer.model.torch_model import trace_to_onnx


def decoder_cache_shape(config) -> tuple[int, int, int]:
    """(decoder layers, heads, head dim) of an encoder-decoder config (T5: d_kv; BART/Marian: d_model/heads; a
    VisionEncoderDecoder: its decoder's, e.g. GPT-2's)."""
    config = _sub_config(config, "decoder")
    layers = int(getattr(config, "num_decoder_layers", None) or getattr(config, "decoder_layers", None)
                 or config.num_hidden_layers)
    heads = int(getattr(config, "decoder_attention_heads", None) or config.num_attention_heads)
    head_dim = int(getattr(config, "d_kv", None) or (getattr(config, "d_model", None) or config.hidden_size) // heads)
    return layers, heads, head_dim


def encoder_input(config) -> str:
    """The encoder's input: tokens (`input_ids`, with `attention_mask`), an image's pixels (a
    VisionEncoderDecoder's `pixel_values`) or log-mel features (Whisper's `input_features`)."""
    kinds = {"vision-encoder-decoder": "pixel_values", "whisper": "input_features"}
    return kinds.get(getattr(config, "model_type", None), "input_ids")


def export_encoder(model, target: Path, opset: int, sample_shape: tuple[int, ...] | None = None,
                   modality: str = "text") -> None:
    """The encoder: tokens (`input_ids`, `attention_mask`), or a medium's samples of `sample_shape` (pixels, audio
    features: `encoder_input`), to `last_hidden_state`."""
    import torch

    encoder = model.get_encoder()
    source = encoder_input(model.config)

    class _Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, *args):
            named = dict(zip([source] if source != "input_ids" else ["input_ids", "attention_mask"], args))
            return self.encoder(**named).last_hidden_state

    if source != "input_ids":
        from batchinfer.media import medium

        sample, sample_axes = medium(modality).dummy(sample_shape)
        axes = {source: sample_axes, "last_hidden_state": {0: "batch"}}
        return trace_to_onnx(_Encoder(), (sample,), target, [source], ["last_hidden_state"], axes, opset)
    ids = torch.ones((2, 5), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask", "last_hidden_state")}
    trace_to_onnx(_Encoder(), (ids, torch.ones_like(ids)), target, ["input_ids", "attention_mask"], ["last_hidden_state"],
            axes, opset)


def cross_names(layers: int) -> list[str]:
    """The cross-attention keys and values, key then value per layer: the cross graph's outputs, the step's inputs."""
    return [f"cross.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]


def export_cross(model, target: Path, opset: int) -> None:
    """The decoder's cross-attention keys and values of the encoder states, once per row: the decoder run for one
    start token into an empty cache, of which only the cross-attention half is kept (the tracer keeps only
    what that half needs: each layer's key and value projections of the encoder states)."""
    import torch
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    layers, _, _ = decoder_cache_shape(model.config)
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    class _Cross(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, encoder_hidden_states):
            start = torch.zeros(encoder_hidden_states.shape[:1] + (1,), dtype=torch.long)
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
            out = self.model(encoder_outputs=(encoder_hidden_states,), decoder_input_ids=start, use_cache=True,
                             **{cache_arg: cache})
            cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            cross = []
            for layer in cache.cross_attention_cache.layers:
                cross += [layer.keys, layer.values]
            return tuple(cross)

    names = cross_names(layers)
    axes = {"encoder_hidden_states": {0: "batch", 1: "source"}, **{n: {0: "batch", 2: "source"} for n in names}}
    trace_to_onnx(_Cross(), (torch.rand(2, 5, _hidden(model.config)),), target, ["encoder_hidden_states"], names,
                  axes, opset)


def export_decoder_step(model, target: Path, opset: int) -> None:
    import torch
    from transformers.cache_utils import EncoderDecoderCache

    layers, heads, head_dim = decoder_cache_shape(model.config)
    past_names, present_names = cache_names(layers)
    cross = cross_names(layers)
    cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    hidden = _hidden(model.config)

    class _Step(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, decoder_input_ids, encoder_attention_mask, *tensors):
            past, cross_kv = tensors[: len(past_names)], tensors[len(past_names):]
            cache = EncoderDecoderCache(filled_cache(past, layers), filled_cache(cross_kv, layers))
            # the cross half is filled: the model reads it and never projects the encoder states, whose place
            # a zero tensor of their shape holds (the models check that there are encoder states)
            states = cross_kv[0].new_zeros((cross_kv[0].shape[0], cross_kv[0].shape[2], hidden))
            out = self.model(encoder_outputs=(states,), attention_mask=encoder_attention_mask,
                             decoder_input_ids=decoder_input_ids, use_cache=True, **{cache_arg: cache})
            cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            present = []
            for layer in cache.self_attention_cache.layers:
                present += [layer.keys, layer.values]
            return (out.logits[:, -1:, :], *present)

    batch, new, past_len, source = 2, 2, 3, 5
    args = (torch.ones((batch, new), dtype=torch.long), torch.ones((batch, source), dtype=torch.long),
            *(torch.rand(batch, heads, past_len, head_dim) for _ in past_names),
            *(torch.rand(batch, heads, source, head_dim) for _ in cross))
    axes = {"decoder_input_ids": {0: "batch", 1: "new"}, "encoder_attention_mask": {0: "batch", 1: "source"},
            "logits": {0: "batch"}, **{n: {0: "batch", 2: "source"} for n in cross}}
    axes |= cache_axes(past_names, present_names)
    inputs = ["decoder_input_ids", "encoder_attention_mask", *past_names, *cross]
    trace_to_onnx(_Step(), args, target, inputs, ["logits", *present_names], axes, opset)


def _hidden(config) -> int:
    """The size of the encoder states the decoder attends to (a VisionEncoderDecoder projects its encoder's)."""
    config = _sub_config(config, "encoder")
    return int(getattr(config, "d_model", None) or config.hidden_size)


def _sub_config(config, name: str):
    """A composite config's encoder or decoder config (VisionEncoderDecoder), else the config itself."""
    sub = getattr(config, name, None)
    return sub if hasattr(sub, "to_dict") else config
