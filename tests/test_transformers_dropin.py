"""`batchinfer.pipeline` as a drop-in for `transformers.pipeline` on real models: long texts without
truncation, where transformers fails, task aliases and the public phases."""

from __future__ import annotations

import numpy as np
import pytest

import batchinfer
from tests.conftest import NER_LABELS, minilm_path
from tests.test_transformers_compat import assert_same

LONG = "word " * 298  # 300 tokens: over the sample tokenizer's 128 and MiniLM's 256 (sentence-transformers)
TOO_LONG = "word " * 600  # 602 tokens: over MiniLM's 512 positions


@pytest.fixture(scope="module")
def sentiment_path():
    from batchinfer.model import resolve_model

    return str(resolve_model("sample:sentiment-minilm").path)


def test_long_texts_without_truncation_as_transformers(sentiment_path):
    from transformers import AutoTokenizer, pipeline

    assert AutoTokenizer.from_pretrained(sentiment_path).model_max_length < 300  # the case in point
    want = pipeline("text-classification", model=sentiment_path, device="cpu")
    ours = batchinfer.pipeline("text-classification", model="sample:sentiment-minilm", accelerator="ort")
    assert_same(ours(LONG), want(LONG))
    assert_same(ours([LONG, "great"], top_k=2), want([LONG, "great"], top_k=2))
    assert_same(ours(LONG, truncation=True), want(LONG, truncation=True))  # cut at the tokenizer's maximum

    want = pipeline("feature-extraction", model=str(minilm_path()), device="cpu")
    ours = batchinfer.pipeline("feature-extraction", model=str(minilm_path()), accelerator="ort")
    got, ref = np.array(ours(LONG)), np.array(want(LONG))
    assert got.shape == ref.shape == (1, 300, 384)
    np.testing.assert_allclose(got, ref, atol=1e-4)
    got, ref = np.array(ours(LONG, truncation=True)), np.array(want(LONG, truncation=True))
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-4)


def test_past_the_position_limit_fails_as_transformers():
    from transformers import pipeline

    want = pipeline("feature-extraction", model=str(minilm_path()), device="cpu")
    with pytest.raises(RuntimeError):
        want(TOO_LONG)
    ours = batchinfer.pipeline("feature-extraction", model=str(minilm_path()), accelerator="ort")
    with pytest.raises(RuntimeError, match="602 tokens.*512.*truncation=True"):
        ours(TOO_LONG)
    with pytest.raises(ValueError, match="truncation=True"):
        ours([LONG, TOO_LONG])
    assert np.array(ours(TOO_LONG, truncation=True)).shape == np.array(want(TOO_LONG, truncation=True)).shape


def test_the_job_runner_still_truncates_at_max_length(tmp_path):
    import polars as pl

    frame = pl.DataFrame({"text": [LONG]})
    got = batchinfer.predict(frame, "text", task="feature-extraction", model=str(minilm_path()))
    assert got.height == 1  # truncated at MiniLM's 256 (sentence-transformers), not refused


def test_task_aliases(tiny_classifier, tiny_ner):
    from transformers import pipeline

    text = "Marie Curie was born in Warsaw"
    for alias, canonical, model in (("sentiment-analysis", "text-classification", tiny_classifier),
                                    ("ner", "token-classification", tiny_ner)):
        ours = batchinfer.pipeline(alias, model=str(model), accelerator="ort")
        assert ours(text) == batchinfer.pipeline(canonical, model=str(model), accelerator="ort")(text)
        want = pipeline(alias, model=str(model), device="cpu")(text)
        got = ours(text)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert {k: v for k, v in g.items() if k != "score"} == {k: v for k, v in w.items() if k != "score"}
            assert g["score"] == pytest.approx(w["score"], abs=1e-4)
    assert set(NER_LABELS.values()) >= {e["entity"] for e in batchinfer.pipeline("ner", model=str(tiny_ner))(text)}


def test_public_phases(tiny_classifier):
    ours = batchinfer.pipeline("text-classification", model=str(tiny_classifier), accelerator="ort")
    inputs = ours.preprocess("what a film")
    outputs = ours.forward(inputs)
    assert ours._forward(inputs).keys() == outputs.keys()
    np.testing.assert_array_equal(ours._forward(inputs)["logits"], outputs["logits"])
    assert_same(ours.postprocess(outputs), ours("what a film")[0])


@pytest.mark.parametrize("accelerator", ["ov", "torch"])
def test_long_texts_on_every_backend(sentiment_path, accelerator):
    from transformers import pipeline

    want = pipeline("text-classification", model=sentiment_path, device="cpu")
    ours = batchinfer.pipeline("text-classification", model="sample:sentiment-minilm", accelerator=accelerator)
    assert_same(ours([LONG, "great"]), want([LONG, "great"]))
