"""Turn a window of rows into model batches: sorted by token length to cut padding, capped by rows and tokens."""

from __future__ import annotations

import numpy as np


def plan_batches(lengths: np.ndarray, *, batch_size: int, max_tokens: int | None = None,
                 sort_by_length: bool = True, sizes: np.ndarray | None = None) -> list[np.ndarray]:
    """Split row indices into batches.

    With sorting, rows are ordered by token length (stable), so each batch pads to a near-equal length.
    `batch_size` counts model inputs: a row brings `sizes[row]` of them (default 1; zero-shot: one per label,
    question answering: one per window). A batch closes when one more row would pass `batch_size` inputs or
    make rows x longest-length exceed `max_tokens` (a batch always takes at least one row).
    The caller restores input order with the indices.
    """
    n = len(lengths)
    order = np.argsort(lengths, kind="stable") if sort_by_length else np.arange(n)
    uniform = sizes is None or (len(sizes) and (sizes == sizes[0]).all())
    if max_tokens is None and uniform:
        rows = max(1, batch_size // (int(sizes[0]) if sizes is not None and len(sizes) else 1))
        return [order[i : i + rows] for i in range(0, n, rows)]
    sizes = np.ones(n, np.int64) if sizes is None else sizes
    batches: list[np.ndarray] = []
    start = 0
    while start < n:
        end = start + 1
        longest = int(lengths[order[start]])
        inputs = int(sizes[order[start]])
        while end < n and inputs + int(sizes[order[end]]) <= batch_size:
            longest_next = max(longest, int(lengths[order[end]]))
            if max_tokens is not None and longest_next * (end - start + 1) > max_tokens:
                break
            longest = longest_next
            inputs += int(sizes[order[end]])
            end += 1
        batches.append(order[start:end])
        start = end
    return batches
