"""A causal LM whose forward pass is a backend's `forward` over the decoder exported with its key/value cache
(`model/decoder_export.py`), so that transformers' `generate` (greedy, beam search, sampling, penalties,
stopping criteria) drives ONNX Runtime or OpenVINO exactly as it drives the PyTorch model.

The cache stays a transformers `DynamicCache` (beam search reorders it); each step feeds its tensors to the
runtime, whose present keys and values (past and new) become the cache's tensors. A stateful runtime (OpenVINO)
keeps the cache itself: transformers' stays empty, and beam search's reordering goes in as `beam_idx`.
Position ids come from the attention mask (a left-padded prompt starts at position 0), so a row's tokens do
not depend on the other rows of its batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _seen(cache) -> int:
    """Tokens already in a self-attention cache (0 before the prompt's step)."""
    return cache.get_seq_length() if len(getattr(cache, "layers", ())) else 0


def _run_step(run, feed: dict[str, np.ndarray], cache, past: int, names: tuple[list[str], list[str]],
              heads: int, head_dim: int) -> dict[str, np.ndarray]:
    """One decoder step on the runtime: `feed` plus the cache's keys and values (empty at the prompt's step),
    then the step's present keys and values become the cache's tensors (no copy: the runtime already wrote the
    whole cache, past and new); the first step fills the empty layers through `update`."""
    import torch

    past_names, present_names = names
    batch = len(next(iter(feed.values())))
    empty = np.zeros((batch, heads, 0, head_dim), np.float32)
    for i in range(len(past_names) // 2):
        layer = cache.layers[i] if past else None
        feed[past_names[2 * i]] = layer.keys.numpy() if layer is not None else empty
        feed[past_names[2 * i + 1]] = layer.values.numpy() if layer is not None else empty
    out = run(feed)
    for i in range(len(present_names) // 2):
        keys = torch.from_numpy(np.ascontiguousarray(out[present_names[2 * i]]))
        values = torch.from_numpy(np.ascontiguousarray(out[present_names[2 * i + 1]]))
        if past and i < len(cache.layers) and getattr(cache.layers[i], "is_initialized", True):
            cache.layers[i].keys, cache.layers[i].values = keys, values
        else:
            cache.update(keys, values, i)
    return out


def runtime_lm(backend, config, generation_config):
    """A transformers model (GenerationMixin) over `backend.forward`."""
    import torch
    from transformers import GenerationMixin, PreTrainedModel
    from transformers.cache_utils import DynamicCache
    from transformers.modeling_outputs import CausalLMOutputWithPast

    from batchinfer.generation.lean import LeanCache
    from batchinfer.model.decoder_export import cache_names, cache_shape
    from batchinfer.model.openvino_stateful import BEAM_IDX

    layers, kv_heads, head_dim = cache_shape(config)
    names = cache_names(layers)
    stateful = getattr(backend, "stateful", False)  # the runtime keeps the cache (a stateful OpenVINO model)

    class RuntimeCausalLM(PreTrainedModel, GenerationMixin):
        config_class = type(config)
        main_input_name = "input_ids"
        _supports_sdpa = True  # attention runs in the runtime; this only satisfies transformers' checks
        _supports_cache_class = True

        def __init__(self) -> None:
            super().__init__(config)
            self._anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # device and dtype: CPU fp32
            self._cache, self._past = None, 0  # a stateful runtime's: whose generate call, and tokens cached
            self._beams = None  # beam search's reordering for a stateful runtime's next step

        def can_generate(self) -> bool:
            return True

        def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None,
                    past_key_values=None, **_: Any):
            cache = cache if cache is not None else past_key_values
            if cache is None:
                cache = DynamicCache()
            batch, new = input_ids.shape
            if stateful and cache is not self._cache:  # a new batch (not a continuation): an empty cache
                backend.reset_state()
                self._cache, self._past, self._beams = cache, 0, None
            past = self._past if stateful else _seen(cache)  # a stateful runtime's cache: transformers' stays empty
            if stateful and past and new > past:  # a continuing call passes the whole sequence, held part too
                input_ids = input_ids[:, past:]
                position_ids = None if position_ids is None else position_ids[:, past:]
                new = input_ids.shape[1]
            if attention_mask is None:
                attention_mask = torch.ones((batch, past + new), dtype=torch.long)
            if position_ids is None:
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -new:]
            feed = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy(),
                    "position_ids": position_ids.numpy()}
            if not stateful:
                out = _run_step(backend.forward, feed, cache, past, names, kv_heads, head_dim)
                return CausalLMOutputWithPast(logits=torch.from_numpy(out["logits"]), cache=cache)
            feed[BEAM_IDX] = np.arange(batch, dtype=np.int32) if self._beams is None else self._beams
            self._beams = None
            out = backend.forward(feed)
            self._past += new
            return CausalLMOutputWithPast(logits=torch.from_numpy(out["logits"]), cache=cache)

        def step_logits(self, ids: np.ndarray, mask: np.ndarray, cache) -> np.ndarray:
            """The lean loop's step (`lean.py`): the last position's logits (batch, vocab) for `ids` after the
            `cache.seen` tokens the runtime has seen; `mask` covers those and `ids`."""
            new = ids.shape[1]
            feed = {"input_ids": ids, "attention_mask": mask,
                    "position_ids": (np.cumsum(mask, -1) - 1).clip(min=0)[:, -new:]}
            if stateful:
                if not cache.seen:
                    backend.reset_state()
                    self._cache = None  # a generate call after this one starts its own batch
                feed[BEAM_IDX] = np.arange(len(ids), dtype=np.int32) if cache.rows is None else cache.rows
                cache.rows = None
                out = backend.forward(feed)
            else:
                past, present = names
                arrays = cache.arrays or [np.zeros((len(ids), kv_heads, 0, head_dim), np.float32)] * len(past)
                feed.update(zip(past, arrays))
                out = backend.forward(feed)
                cache.arrays = [out[name] for name in present]
            cache.seen += new
            return out["logits"][:, -1, :]

        def select_rows(self, cache, rows) -> None:
            """Continue only these rows (finished rows leave the batch between generate calls)."""
            if isinstance(cache, LeanCache):
                cache.batch_select_indices(rows.numpy())
            elif stateful:
                self._beams = rows.numpy().astype(np.int32)
            else:
                cache.batch_select_indices(rows)

        def _reorder_cache(self, cache, beam_idx):
            """Beam search: which row each row continues (the runtime's cache reorders itself next step)."""
            if stateful:
                self._beams = beam_idx.numpy().astype(np.int32)
            else:
                cache.reorder_cache(beam_idx)
            return cache

    model = RuntimeCausalLM().eval()
    model.generation_config = generation_config
    return model


def runtime_seq2seq(backend, config, generation_config):
    """A transformers encoder-decoder model (GenerationMixin) over a backend's `encoder`, `cross` and `decoder`
    parts (`model/seq2seq_export.py`). The cache is transformers' EncoderDecoderCache: the cross graph fills its
    cross-attention half at a row's first step (after beam search has expanded the encoder states), and beam
    search reorders both halves as it does for PyTorch. A VisionEncoderDecoder's encoder takes pixels; Whisper's
    takes log-mel features, and its own `generate` (language and task tokens, timestamps) drives the graphs."""
    import torch
    from transformers import GenerationMixin, PreTrainedModel
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache
    from transformers.modeling_outputs import BaseModelOutput, Seq2SeqLMOutput

    from batchinfer.model.decoder_export import cache_names
    from batchinfer.model.seq2seq_export import cross_names, decoder_cache_shape, encoder_input

    layers, heads, head_dim = decoder_cache_shape(config)
    names = cache_names(layers)
    cross = cross_names(layers)
    encoder_part, cross_part, decoder_part = (backend.parts[p] for p in ("encoder", "cross", "decoder"))
    source = encoder_input(config)
    whisper = getattr(config, "model_type", None) == "whisper"
    bases: tuple[type, ...] = (PreTrainedModel, GenerationMixin)
    if whisper:
        from transformers.models.whisper.generation_whisper import WhisperGenerationMixin

        bases = (WhisperGenerationMixin, PreTrainedModel)

    class RuntimeEncoder(torch.nn.Module):
        main_input_name = source

        def __init__(self) -> None:
            super().__init__()
            if whisper:  # what Whisper's generate reads off its encoder: 2 frames of features per position
                from types import SimpleNamespace

                self.conv1, self.conv2 = SimpleNamespace(stride=(1,)), SimpleNamespace(stride=(2,))

        def forward(self, input_ids=None, attention_mask=None, pixel_values=None, input_features=None, **_: Any):
            if source != "input_ids":
                given = pixel_values if source == "pixel_values" else input_features
                out = encoder_part.forward({source: np.ascontiguousarray(given.numpy(), dtype=np.float32)})
                return BaseModelOutput(last_hidden_state=torch.from_numpy(out["last_hidden_state"]))
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            out = encoder_part.forward({"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()})
            return BaseModelOutput(last_hidden_state=torch.from_numpy(out["last_hidden_state"]))

    class _Shell(torch.nn.Module):  # Whisper's generate reads `model.encoder`
        def __init__(self, encoder) -> None:
            super().__init__()
            self.encoder = encoder

    class RuntimeSeq2SeqLM(*bases):
        config_class = type(config)
        main_input_name = source
        _supports_sdpa = True
        _supports_cache_class = True

        def __init__(self) -> None:
            super().__init__(config)
            self._anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
            self.encoder = RuntimeEncoder()
            if whisper:
                self.model = _Shell(self.encoder)

        def get_encoder(self):
            return self.encoder

        def can_generate(self) -> bool:
            return True

        def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, encoder_outputs=None,
                    cache=None, past_key_values=None, decoder_attention_mask=None, pixel_values=None,
                    input_features=None, **_: Any):
            # decoder_attention_mask: all ones (a continuing generate call's), as the decoder's own default
            cache = cache if cache is not None else past_key_values
            if cache is None:
                cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
            if not isinstance(cache, EncoderDecoderCache):
                cache = EncoderDecoderCache(cache, DynamicCache())
            if whisper:  # the mask Whisper's generate passes is the features' (its decoder attends to every state)
                attention_mask = None
            own, attended = cache.self_attention_cache, cache.cross_attention_cache
            if not _seen(attended):  # a batch's first step: the encoder states' cross keys and values, once
                if encoder_outputs is None:
                    encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                                   pixel_values=pixel_values, input_features=input_features)
                hidden = encoder_outputs[0] if isinstance(encoder_outputs, (tuple, list)) else \
                    encoder_outputs.last_hidden_state
                kv = cross_part.forward({"encoder_hidden_states": hidden.numpy()})
                for i in range(layers):
                    attended.update(torch.from_numpy(kv[cross[2 * i]]), torch.from_numpy(kv[cross[2 * i + 1]]), i)
            if attention_mask is None:
                attention_mask = torch.ones((decoder_input_ids.shape[0], attended.get_seq_length()), dtype=torch.long)
            feed = {"decoder_input_ids": decoder_input_ids.numpy(), "encoder_attention_mask": attention_mask.numpy()}
            for i, layer in enumerate(attended.layers):
                feed[cross[2 * i]], feed[cross[2 * i + 1]] = layer.keys.numpy(), layer.values.numpy()
            out = _run_step(decoder_part.forward, feed, own, _seen(own), names, heads, head_dim)
            return Seq2SeqLMOutput(logits=torch.from_numpy(out["logits"]), cache=cache)

    model = RuntimeSeq2SeqLM().eval()
    model.generation_config = generation_config
    return model


def runtime_vlm(backend, config, generation_config):
    """A vision-language model (GenerationMixin) over a backend's `vision`, `embed` and `lm` parts
    (`model/vlm_export.py`): at a batch's first step the image features take the place of the prompt's image
    tokens in its embeddings, as the model's own forward merges them; every step runs the language model over
    embeddings and a transformers DynamicCache."""
    import torch
    from transformers import GenerationMixin, PreTrainedModel
    from transformers.cache_utils import DynamicCache
    from transformers.modeling_outputs import CausalLMOutputWithPast

    from batchinfer.model.decoder_export import cache_names, cache_shape

    layers, kv_heads, head_dim = cache_shape(config)
    names = cache_names(layers)
    vision, embed, lm = (backend.parts[p] for p in ("vision", "embed", "lm"))
    image_token = int(getattr(config, "image_token_id", None) if getattr(config, "image_token_id", None) is not None
                      else config.image_token_index)

    class RuntimeVisionLM(PreTrainedModel, GenerationMixin):
        config_class = type(config)
        main_input_name = "input_ids"
        _supports_sdpa = True
        _supports_cache_class = True

        def __init__(self) -> None:
            super().__init__(config)
            self._anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)

        def can_generate(self) -> bool:
            return True

        def forward(self, input_ids=None, attention_mask=None, position_ids=None, pixel_values=None, cache=None,
                    past_key_values=None, **_: Any):
            cache = cache if cache is not None else past_key_values
            if cache is None:
                cache = DynamicCache()
            batch, new = input_ids.shape
            past = _seen(cache)
            ids = input_ids.numpy()
            embeds = embed.forward({"input_ids": ids})["inputs_embeds"]
            if pixel_values is not None and past == 0:  # the prompt's step: image features in place
                features = vision.forward({"pixel_values": pixel_values.numpy()})["image_features"]
                places = ids == image_token
                if int(places.sum()) != features.shape[0] * features.shape[1]:
                    raise ValueError(f"the prompts hold {int(places.sum())} image tokens, the images give "
                                     f"{features.shape[0] * features.shape[1]} features")
                embeds = embeds.copy()
                embeds[places] = features.reshape(-1, features.shape[-1])
            if attention_mask is None:
                attention_mask = torch.ones((batch, past + new), dtype=torch.long)
            if position_ids is None:
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -new:]
            feed = {"inputs_embeds": embeds, "attention_mask": attention_mask.numpy(),
                    "position_ids": position_ids.numpy()}
            out = _run_step(lm.forward, feed, cache, past, names, kv_heads, head_dim)
            return CausalLMOutputWithPast(logits=torch.from_numpy(out["logits"]), cache=cache)

    model = RuntimeVisionLM().eval()
    model.generation_config = generation_config
    return model
