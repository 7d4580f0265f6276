"""Sampling that a resumed run repeats exactly: each row draws from its own random stream.

transformers samples with one global generator, so a row's tokens depend on which rows share its batch.
Here sampling is Gumbel-max: after the usual warpers (temperature, top-k, top-p), each row's scores get
Gumbel noise drawn from a generator seeded by (seed, the row's key, the step), and the argmax is the sampled
token: a draw from softmax(scores), the same whatever the batch. Generation then runs greedy.
"""

from __future__ import annotations

import hashlib

import numpy as np

_MASK = (1 << 63) - 1


def row_seed(seed: int, key: int, step: int) -> int:
    """A 63-bit seed for one row and step, mixed so that nearby keys give unrelated streams."""
    digest = hashlib.blake2b(f"{seed}:{key}:{step}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _MASK


def sampling_processors(config, seed: int, keys: np.ndarray, prompt_width: int) -> list:
    """Warpers for `config` (temperature, top_k, top_p, min_p) then the per-row Gumbel noise."""
    from transformers import LogitsProcessor
    from transformers.generation.logits_process import (MinPLogitsWarper, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    import torch

    class PerRowGumbel(LogitsProcessor):
        def __call__(self, input_ids, scores):
            step = input_ids.shape[1] - prompt_width
            noise = torch.empty_like(scores)
            for r in range(scores.shape[0]):
                gen = torch.Generator().manual_seed(row_seed(seed, int(keys[r]), step))
                uniform = torch.rand(scores.shape[1], generator=gen, dtype=torch.float64).clamp_(1e-20, 1 - 1e-12)
                noise[r] = (-torch.log(-torch.log(uniform))).to(scores.dtype)
            return scores + noise

    found = []
    if config.temperature is not None and config.temperature != 1.0:
        found.append(TemperatureLogitsWarper(config.temperature))
    if config.top_k:
        found.append(TopKLogitsWarper(top_k=config.top_k, min_tokens_to_keep=1))
    if config.top_p is not None and config.top_p < 1.0:
        found.append(TopPLogitsWarper(top_p=config.top_p, min_tokens_to_keep=1))
    if getattr(config, "min_p", None):
        found.append(MinPLogitsWarper(min_p=config.min_p, min_tokens_to_keep=1))
    return [*found, PerRowGumbel()]
