"""Parity with the reference: transformers' pipeline for classification, plain PyTorch pooling for embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from batchinfer.job import BatchingSpec, ModelSpec
from batchinfer.pipelines import build_pipeline
from tests.conftest import TEXTS


@pytest.fixture(scope="module")
def reference_classifier(tiny_classifier):
    from transformers import pipeline

    return pipeline("text-classification", model=str(tiny_classifier), device="cpu")


@pytest.mark.parametrize("backend", ["ort", "openvino", "torch"])
@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_text_classification_matches_transformers(tiny_classifier, reference_classifier, backend, batch_size):
    pipe = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend=backend))
    got = pipe.predict(TEXTS, BatchingSpec(batch_size=batch_size))
    want = reference_classifier(TEXTS, truncation=True)
    assert got["label"].to_pylist() == [w["label"] for w in want]
    np.testing.assert_allclose(got["score"].to_numpy(), [w["score"] for w in want], atol=1e-4)
    assert len({w["label"] for w in want}) > 1, "the tiny model should not predict one label for everything"


@pytest.mark.parametrize("backend", ["ort", "openvino", "torch"])
def test_text_classification_top_k_matches_transformers(tiny_classifier, reference_classifier, backend):
    pipe = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend=backend, top_k=2))
    got = pipe.predict(TEXTS)
    want = reference_classifier(TEXTS, truncation=True, top_k=2)
    assert got["label"].to_pylist() == [[d["label"] for d in row] for row in want]
    np.testing.assert_allclose(np.array(got["score"].to_pylist()), [[d["score"] for d in row] for row in want],
                               atol=1e-4)


@pytest.mark.parametrize("function", ["sigmoid", "none"])
def test_function_to_apply_matches_transformers(tiny_classifier, reference_classifier, function):
    pipe = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend="ort",
                                    function_to_apply=function))
    got = pipe.predict(TEXTS)
    want = reference_classifier(TEXTS, truncation=True, function_to_apply=function)
    assert got["label"].to_pylist() == [w["label"] for w in want]
    np.testing.assert_allclose(got["score"].to_numpy(), [w["score"] for w in want], atol=1e-4, rtol=1e-5)


def torch_mean_pooling(model_path, texts, *, normalize: bool) -> np.ndarray:
    """The reference: transformers AutoModel + mean pooling over the attention mask, in PyTorch."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_path))
    model = AutoModel.from_pretrained(str(model_path)).eval()
    enc = tok(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if normalize:
        emb = torch.nn.functional.normalize(emb, dim=1)
    return emb.numpy()


@pytest.mark.parametrize("backend", ["ort", "openvino", "torch"])
@pytest.mark.parametrize("normalize", [False, True])
def test_embeddings_match_torch_mean_pooling(tiny_encoder, backend, normalize):
    pipe = build_pipeline(ModelSpec(name=str(tiny_encoder), task="feature-extraction", backend=backend,
                                    normalize=normalize))
    col = pipe.predict(TEXTS, BatchingSpec(batch_size=3))["embedding"]
    got = np.array(col.to_pylist(), dtype=np.float32)
    want = torch_mean_pooling(tiny_encoder, TEXTS, normalize=normalize)
    assert str(col.type) == "fixed_size_list<item: float>[32]"
    np.testing.assert_allclose(got, want, atol=1e-4)
    cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert cos.min() >= 0.9999
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_nulls_are_predicted_as_empty_text(tiny_classifier):
    import pyarrow as pa

    pipe = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification"))
    got = pipe.predict(pa.array([None, "", "x"], type=pa.string()))
    assert got["label"][0] == got["label"][1]
    assert got["score"][0].as_py() == pytest.approx(got["score"][1].as_py(), abs=1e-6)


def test_max_length_and_sorting_do_not_change_answers(tiny_classifier):
    spec = ModelSpec(name=str(tiny_classifier), task="text-classification")
    pipe = build_pipeline(spec)
    sorted_ = pipe.predict(TEXTS, BatchingSpec(batch_size=2, sort_by_length=True))
    unsorted = pipe.predict(TEXTS, BatchingSpec(batch_size=2, sort_by_length=False))
    budget = pipe.predict(TEXTS, BatchingSpec(batch_size=8, max_tokens=70))
    for other in (unsorted, budget):
        assert other["label"].to_pylist() == sorted_["label"].to_pylist()
        np.testing.assert_allclose(other["score"].to_numpy(), sorted_["score"].to_numpy(), atol=1e-5)
