"""One batch of prompts through `generate`: transformers' decoding over the backend, seeded per row.

`decoder(backend, config, generation_config)` is the model `generate` runs on: the PyTorch model itself (the
reference), or a runtime-backed one (`runtime_lm.py`). `generate_batch` returns each row's new tokens, their
count, and why it finished: `eos` (an end token), `length` (max_new_tokens reached). Stop strings are the
caller's (they are text, decided after decoding).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from batchinfer.generation.lean import end_tokens


@dataclass
class Generated:
    tokens: list[np.ndarray]  # each row's new tokens (an end token included), without padding
    finish: list[str]  # "eos" or "length" per row


def model_config(folder: str):
    """The transformers config of a model folder (the runtime-backed model is built on it)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(folder)


def decoder(backend, config, generation_config):
    """What `generate` runs on for this backend: its transformers model (PyTorch, IPEX), else `forward`."""
    model = getattr(backend, "model", None)
    if model is not None and hasattr(model, "generate"):
        model.generation_config = generation_config
        return model
    from batchinfer.generation.runtime_lm import runtime_lm, runtime_seq2seq, runtime_vlm

    if "vision" in getattr(backend, "parts", {}):  # a vision-language model's graphs
        return runtime_vlm(backend, config, generation_config)
    build = runtime_seq2seq if getattr(config, "is_encoder_decoder", False) else runtime_lm
    return build(backend, config, generation_config)


CHUNK = 16  # new tokens per generate call: between calls, finished rows leave the batch


def generate_batch(model, inputs: dict[str, np.ndarray], config, *, keys: np.ndarray, seed: int,
                   stop: list[str] | None = None, tokenizer: Any = None) -> Generated:
    """Generate for one batch (left-padded for a decoder). `config`: the resolved GenerationConfig (do_sample
    is done here by per-row Gumbel-max sampling over transformers' greedy search); `keys`: each row's seed key.

    Without beams, a batch is generated CHUNK new tokens at a time, each call continuing from the last one's
    cache; rows that finished (an end token, a stop string) leave the batch in between, so the batch shrinks
    as rows finish instead of carrying them to the longest row's end. The tokens are the same as from one call:
    each call continues exactly where the last one stopped (its cache, positions and step count; an
    encoder-decoder's encoder runs once)."""
    import torch

    pixels = None  # a vision-language model's images, beside its prompt tokens
    if "pixel_values" in inputs and "input_ids" not in inputs:  # an image encoder's input (VisionEncoderDecoder)
        ids, mask = torch.from_numpy(np.ascontiguousarray(inputs["pixel_values"], dtype=np.float32)), None
    else:
        if "pixel_values" in inputs:
            pixels = torch.from_numpy(np.ascontiguousarray(inputs["pixel_values"], dtype=np.float32))
        ids = torch.from_numpy(np.ascontiguousarray(inputs["input_ids"], dtype=np.int64))
        mask = torch.from_numpy(np.ascontiguousarray(inputs["attention_mask"], dtype=np.int64))
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    start = 1 if seq2seq else ids.shape[1]  # where the new tokens begin in what generate returns
    call = dict(keys=keys, seed=seed, start=start, stop=stop, tokenizer=tokenizer, pixels=pixels)
    budget = config.max_new_tokens
    if budget is None or budget <= CHUNK or (config.num_beams or 1) != 1:
        new = _generate(model, ids, mask, config, **call).sequences[:, start:].numpy()
        return _finished(list(new), config)
    rows = np.arange(len(ids))  # the batch's rows still generating, as indices into the input
    parts: list[list[np.ndarray]] = [[] for _ in rows]
    cache, decoded, done = None, None, 0  # decoded: an encoder-decoder's decoder tokens so far
    encoded = _encode(model, ids, mask) if seq2seq else None
    while len(rows) and done < budget:
        step = min(CHUNK, budget - done)
        run = copy.deepcopy(config)
        # 0, not None: generate fills a None from the model's generation config (the whole call's minimum)
        run.max_new_tokens, run.min_new_tokens = step, min(step, max(0, (config.min_new_tokens or 0) - done))
        out = _generate(model, ids, mask, run, **{**call, "keys": keys[rows]}, cache=cache, encoded=encoded,
                        decoded=decoded)
        cache, done = _cache_of(out), done + step
        if seq2seq:
            width, decoded = (1 if decoded is None else decoded.shape[1]), out.sequences
            sequences = decoded
        else:
            width, ids = ids.shape[1], out.sequences
            mask = torch.cat([mask, torch.ones((len(ids), ids.shape[1] - width), dtype=mask.dtype)], 1)
            sequences = ids
        for row, tokens in zip(rows, sequences[:, width:].numpy()):
            parts[row].append(tokens)
        over = _over(sequences, width, config, stop, tokenizer)
        if over.all():
            break
        if over.any() and done < budget:  # finished rows leave; the rest continue
            keep = torch.from_numpy(np.flatnonzero(~over))
            ids, mask, rows = ids[keep], None if mask is None else mask[keep], rows[keep.numpy()]
            if seq2seq:
                decoded, encoded = decoded[keep], type(encoded)(last_hidden_state=encoded.last_hidden_state[keep])
            select = getattr(model, "select_rows", None)
            select(cache, keep) if select is not None else cache.batch_select_indices(keep)
    return _finished([np.concatenate(p) for p in parts], config)


def _source(ids, mask) -> dict[str, Any]:
    """What the encoder (or a decoder-only model) takes: tokens and their mask, or an image's pixels."""
    return {"pixel_values": ids} if mask is None else {"input_ids": ids, "attention_mask": mask}


def _encode(model, ids, mask):
    """An encoder-decoder's encoder outputs, once for all of a batch's generate calls."""
    import torch

    with torch.inference_mode():
        return model.get_encoder()(**_source(ids, mask), return_dict=True)


def _generate(model, ids, mask, config, *, keys, seed, start, stop, tokenizer, cache=None, encoded=None,
              decoded=None, pixels=None):
    """One generate call (continuing from `cache`, and for an encoder-decoder from its `encoded` outputs and
    `decoded` tokens, if given); what generate returns (sequences, cache)."""
    import inspect

    import torch

    from batchinfer.generation.lean import generate_lean, runs_lean
    from batchinfer.generation.sampling import sampling_processors

    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    extra: dict[str, Any] = {} if seq2seq else {"position_ids": (mask.cumsum(-1) - 1).clamp(min=0)}
    # (a left-padded prompt starts at position 0; an encoder-decoder's decoder starts from its start token)
    run, processors = copy.deepcopy(config), []  # the task's own config stays as the job asked
    run.return_dict_in_generate = True  # the sequences and the cache a next call continues from
    if config.do_sample:
        run.do_sample, run.temperature, run.top_k, run.top_p = False, 1.0, None, 1.0
        if hasattr(run, "min_p"):
            run.min_p = None
        processors = sampling_processors(config, seed, keys, start)
    if stop:
        extra |= {"stop_strings": stop, "tokenizer": tokenizer}
    if cache is not None:
        takes = inspect.signature(model.forward).parameters
        extra["cache" if "cache" in takes else "past_key_values"] = cache
    if encoded is not None:
        extra["encoder_outputs"] = encoded
    if pixels is not None and cache is None:  # a vision-language model reads its images at the prompt's step
        extra["pixel_values"] = pixels
    if decoded is not None:  # with its mask, so that generate feeds only what the cache has not seen
        extra |= {"decoder_input_ids": decoded, "decoder_attention_mask": torch.ones_like(decoded)}
    if runs_lean(model, run, cache):  # greedy over a runtime decoder: the same tokens, without generate
        return generate_lean(model, ids, mask, run, processors=processors, stop=stop, tokenizer=tokenizer,
                             cache=cache)
    with torch.inference_mode():
        return model.generate(**_source(ids, mask), generation_config=run, logits_processor=processors or None,
                              **extra)


def _cache_of(out):
    return getattr(out, "cache", None) or getattr(out, "past_key_values", None)


def _over(ids, width: int, config, stop, tokenizer) -> np.ndarray:
    """Rows that finished in the call whose new tokens start at `width`: an end token, or a stop string."""
    new = ids[:, width:].numpy()
    ends = list(end_tokens(config))
    over = np.isin(new, ends).any(1) if ends else np.zeros(len(new), bool)
    if stop:  # where transformers' criterion stopped a row (it pads the row after)
        from transformers import StopStringCriteria

        criterion = StopStringCriteria(tokenizer, stop)
        for end in range(width + 1, ids.shape[1] + 1):
            over |= criterion(ids[:, :end], None).numpy()
    return over


def _finished(new: list[np.ndarray], config) -> Generated:
    """Each row's tokens up to its end token (`eos`), else without trailing padding (`length`)."""
    ends = end_tokens(config)
    pad = config.pad_token_id
    tokens, finish = [], []
    for row in new:
        hits = np.flatnonzero(np.isin(row, list(ends))) if ends else np.array([], dtype=np.int64)
        if len(hits):
            tokens.append(row[: hits[0] + 1])
            finish.append("eos")
            continue
        if pad is not None and pad not in ends and len(row) and row[-1] == pad:  # stopped (a stop string) early
            real = np.flatnonzero(row != pad)
            row = row[: real[-1] + 1] if len(real) else row[:0]
        tokens.append(row)
        finish.append("length")
    return Generated(tokens, finish)
