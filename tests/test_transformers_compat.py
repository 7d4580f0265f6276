"""`batchinfer.pipeline(...)` returns exactly what `transformers.pipeline(...)` returns, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import batchinfer
from tests.conftest import TEXTS

SHORT = [t for t in TEXTS if len(t) < 100]
BACKENDS = ["ort", "ov", "torch"]


@pytest.fixture(scope="module")
def reference(tiny_classifier, tiny_encoder):
    from transformers import pipeline

    return {"text-classification": pipeline("text-classification", model=str(tiny_classifier), device="cpu"),
            "feature-extraction": pipeline("feature-extraction", model=str(tiny_encoder), device="cpu")}


def assert_same(got, want):
    """Equal structure and labels, scores within 1e-4."""
    if isinstance(want, dict):
        assert got.keys() == want.keys()
        assert got["label"] == want["label"]
        assert got["score"] == pytest.approx(want["score"], abs=1e-4)
    elif isinstance(want, list) and want and isinstance(want[0], (dict, list)):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
    else:
        np.testing.assert_allclose(np.array(got), np.array(want), atol=1e-4)


@pytest.mark.parametrize("accelerator", BACKENDS)
@pytest.mark.parametrize("kwargs", [{}, {"top_k": 1}, {"top_k": 2}, {"top_k": None},
                                    {"function_to_apply": "sigmoid"}, {"top_k": 3, "function_to_apply": "none"}])
def test_text_classification(tiny_classifier, reference, accelerator, kwargs):
    ours = batchinfer.pipeline("text-classification", model=str(tiny_classifier), accelerator=accelerator)
    ref = reference["text-classification"]
    assert_same(ours(SHORT[0], **kwargs), ref(SHORT[0], **kwargs))
    assert_same(ours(SHORT, **kwargs), ref(SHORT, **kwargs))
    assert_same(ours(TEXTS, truncation=True, batch_size=3, **kwargs),
                ref(TEXTS, truncation=True, batch_size=3, **kwargs))


@pytest.mark.parametrize("accelerator", BACKENDS)
def test_feature_extraction(tiny_encoder, reference, accelerator):
    ours = batchinfer.pipeline("feature-extraction", model=str(tiny_encoder), accelerator=accelerator)
    ref = reference["feature-extraction"]
    single = ours(SHORT[0])
    assert np.array(single).shape == np.array(ref(SHORT[0])).shape
    assert_same(single, ref(SHORT[0]))
    for got, want in zip(ours(TEXTS, truncation=True, batch_size=4), ref(TEXTS, truncation=True, batch_size=4)):
        assert np.array(got).shape == np.array(want).shape
        assert_same(got, want)


def test_three_phases(tiny_classifier, reference):
    ours = batchinfer.pipeline("text-classification", model=str(tiny_classifier), accelerator="ort")
    inputs = ours.preprocess(SHORT[1])
    assert set(inputs) == {"input_ids", "token_type_ids", "attention_mask"}
    outputs = ours._forward(inputs)
    assert outputs["logits"].shape == (1, 3)
    assert_same(ours.postprocess(outputs), reference["text-classification"](SHORT[1])[0])
    assert_same(ours.postprocess(outputs, top_k=2), reference["text-classification"](SHORT[1], top_k=2))


def test_cached_and_best_accelerator(tiny_classifier, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="batchinfer")
    first = batchinfer.pipeline("text-classification", model=str(tiny_classifier))
    assert first.accelerator == "openvino"  # installed: the best one
    assert "accelerator 'openvino' chosen" in caplog.text
    assert batchinfer.pipeline("text-classification", model=str(tiny_classifier)) is first
    assert batchinfer.pipeline("text-classification", model=str(tiny_classifier), top_k=2) is not first


def test_errors_are_clear(tiny_classifier):
    ours = batchinfer.pipeline("text-classification", model=str(tiny_classifier), accelerator="ort")
    with pytest.raises(TypeError, match="accepted: batch_size"):
        ours("x", topk=2)
    with pytest.raises(ValueError, match="truncation=True"):
        ours("word " * 200)
    with pytest.raises(batchinfer.ModelError, match="unknown task"):
        batchinfer.pipeline("speech-recognition", model=str(tiny_classifier))
