"""Turn a window of rows into model batches: sorted by token length to cut padding, capped by rows and tokens."""

from __future__ import annotations

import numpy as np


def plan_batches(lengths: np.ndarray, *, batch_size: int, max_tokens: int | None = None,
                 sort_by_length: bool = True) -> list[np.ndarray]:
    """Split row indices into batches.

    With sorting, rows are ordered by token length (stable), so each batch pads to a near-equal length.
    A batch closes when it holds `batch_size` rows or when one more row would make
    rows x longest-length exceed `max_tokens` (a batch always takes at least one row).
    The caller restores input order with the indices.
    """
    n = len(lengths)
    order = np.argsort(lengths, kind="stable") if sort_by_length else np.arange(n)
    if max_tokens is None:
        return [order[i : i + batch_size] for i in range(0, n, batch_size)]
    batches: list[np.ndarray] = []
    start = 0
    while start < n:
        end = start + 1
        longest = int(lengths[order[start]])
        while end < n and end - start < batch_size:
            longest_next = max(longest, int(lengths[order[end]]))
            if longest_next * (end - start + 1) > max_tokens:
                break
            longest = longest_next
            end += 1
        batches.append(order[start:end])
        start = end
    return batches
