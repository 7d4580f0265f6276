"""Texts are tokenized once: `Task.pad` over `Task.encode` must give exactly what `Task.preprocess` gives."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoConfig, AutoTokenizer

from batchinfer.tasks import task_class
from tests.conftest import minilm_path

TEXTS = ["", "short", "ünïcode 😀 and emoji " * 3, "word " * 400, "a b c d e f g h i j k l m n o p q r s t u v",
         "  leading and trailing spaces  ", "\u200b zero width", "x" * 3000, "Mixed CASE, punctuation!?"]


def _task(path, name, max_length=None, padding_side="right", **options):
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = padding_side
    return task_class(name)(AutoConfig.from_pretrained(path).to_dict(), tokenizer, max_length=max_length,
                            **options)


@pytest.mark.parametrize("padding_side", ["right", "left"])
@pytest.mark.parametrize("max_length", [None, 16])
def test_pad_of_encode_equals_preprocess(padding_side, max_length):
    task = _task(minilm_path(), "feature-extraction", max_length, padding_side)
    encoded = task.encode(TEXTS)
    rng = np.random.default_rng(0)
    for rows in [np.arange(len(TEXTS)), rng.permutation(len(TEXTS))[:4], np.array([1]), np.array([0, 3])]:
        want = task.preprocess([TEXTS[i] for i in rows])
        got = task.pad(encoded, rows)
        assert list(got) == list(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_encode_counts_tokens_before_truncation():
    task = _task(minilm_path(), "feature-extraction", max_length=16)
    encoded = task.encode(TEXTS)
    np.testing.assert_array_equal(encoded.lengths, task.token_lengths(TEXTS))
    assert (encoded.lengths > 16).sum() == 3
    np.testing.assert_array_equal(encoded.kept, np.minimum(encoded.lengths, 16))


def test_subset_keeps_the_chosen_texts(tiny_classifier):
    task = _task(tiny_classifier, "text-classification", max_length=8)
    encoded = task.encode(TEXTS)
    keep = np.array([2, 5, 8])
    sub = encoded.subset(keep)
    for key, value in task.pad(sub, np.arange(3)).items():
        np.testing.assert_array_equal(value, task.preprocess([TEXTS[i] for i in keep])[key])


def test_tasks_that_tokenize_per_batch_only_count(tiny_nli):
    task = _task(tiny_nli, "zero-shot-classification", candidate_labels=["a", "b"])
    encoded = task.encode(TEXTS)
    assert encoded.ids is None
    np.testing.assert_array_equal(encoded.lengths, task.token_lengths(TEXTS))
