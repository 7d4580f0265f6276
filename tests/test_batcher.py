from __future__ import annotations

import numpy as np
import pytest

from batchinfer.engine.batcher import plan_batches


@pytest.mark.parametrize("sort", [True, False])
@pytest.mark.parametrize("max_tokens", [None, 50, 400])
def test_plan_covers_every_row_once_within_limits(sort, max_tokens):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, size=1000)
    plan = plan_batches(lengths, batch_size=16, max_tokens=max_tokens, sort_by_length=sort)
    flat = np.concatenate(plan)
    assert sorted(flat.tolist()) == list(range(1000))
    assert all(1 <= len(b) <= 16 for b in plan)
    if max_tokens:
        assert all(len(b) == 1 or len(b) * lengths[b].max() <= max_tokens for b in plan)
    if sort:
        assert (np.diff(lengths[flat]) >= 0).all()
    else:
        assert (flat == np.arange(1000)).all()


def test_sorting_cuts_padding():
    lengths = np.array([5, 60, 5, 60] * 50)
    padded = lambda plan: sum(len(b) * lengths[b].max() for b in plan)  # noqa: E731
    assert padded(plan_batches(lengths, batch_size=10)) < 0.6 * padded(
        plan_batches(lengths, batch_size=10, sort_by_length=False))


def test_a_row_longer_than_the_budget_gets_its_own_batch():
    plan = plan_batches(np.array([10, 500, 10]), batch_size=8, max_tokens=100)
    assert [len(b) for b in plan] == [2, 1]
