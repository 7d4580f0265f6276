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


@pytest.mark.parametrize("max_tokens", [None, 2000])
def test_batch_size_counts_each_rows_model_inputs(max_tokens):
    """A row that becomes several model inputs (question-answering windows, zero-shot label pairs) brings all
    of them into one batch, and batch_size caps the inputs, not the rows (a row alone may pass it)."""
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 6, size=300)
    sizes[7] = 40  # one row with more inputs than a batch holds
    lengths = sizes * 64
    plan = plan_batches(lengths, batch_size=16, max_tokens=max_tokens, sizes=sizes)
    assert sorted(np.concatenate(plan).tolist()) == list(range(300))
    assert all(len(b) == 1 or sizes[b].sum() <= 16 for b in plan)
    assert [b.tolist() for b in plan if 7 in b] == [[7]]
    assert np.mean([sizes[b].sum() for b in plan if len(b) > 1]) > 12  # batches are filled, not one row each
    same = plan_batches(lengths[:50], batch_size=16, sizes=np.full(50, 3))  # zero-shot: 5 rows of 3 labels
    assert [len(b) for b in same] == [5] * 10
