"""One batch of prompts through `generate`: transformers' decoding over the backend, seeded per row.

`decoder(backend, config, generation_config)` is the model `generate` runs on: the PyTorch model itself (the reference), or a
runtime-backed one (`runtime_lm.py`). `generate_batch` returns each row's new tokens, their count, and why it
finished: `eos` (an end token), `length` (max_new_tokens reached). Stop strings are the caller's (they are
text, decided after decoding).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np


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
    from batchinfer.generation.runtime_lm import runtime_lm, runtime_seq2seq

    build = runtime_seq2seq if getattr(config, "is_encoder_decoder", False) else runtime_lm
    return build(backend, config, generation_config)


def end_tokens(config) -> set[int]:
    eos = config.eos_token_id
    return set() if eos is None else {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


def generate_batch(model, inputs: dict[str, np.ndarray], config, *, keys: np.ndarray, seed: int,
                   stop: list[str] | None = None, tokenizer: Any = None) -> Generated:
    """Generate for one left-padded batch. `config`: the resolved GenerationConfig (do_sample is done here by
    per-row Gumbel-max sampling over transformers' greedy search); `keys`: each row's seed key."""
    import torch

    from batchinfer.generation.sampling import sampling_processors

    ids = torch.from_numpy(np.ascontiguousarray(inputs["input_ids"], dtype=np.int64))
    mask = torch.from_numpy(np.ascontiguousarray(inputs["attention_mask"], dtype=np.int64))
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    extra: dict[str, Any] = {} if seq2seq else {"position_ids": (mask.cumsum(-1) - 1).clamp(min=0)}
    # (a left-padded prompt starts at position 0; an encoder-decoder's decoder starts from its start token)
    start = 1 if seq2seq else ids.shape[1]  # where the new tokens begin in what generate returns
    run = config
    processors = []
    if config.do_sample:
        run = copy.deepcopy(config)  # the task's own config stays as the job asked
        run.do_sample, run.temperature, run.top_k, run.top_p = False, 1.0, None, 1.0
        if hasattr(run, "min_p"):
            run.min_p = None
        processors = sampling_processors(config, seed, keys, start)
    if stop:
        extra |= {"stop_strings": stop, "tokenizer": tokenizer}
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=run,
                             logits_processor=processors or None, **extra)
    new = out[:, start:].numpy()
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
