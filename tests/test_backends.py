"""The backend registry: names and aliases, declared capabilities, and what every backend tells its callers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from batchinfer.backends import aliases, backend_class, backend_names, check_options, load_backend
from batchinfer.errors import ModelError
from tests.test_export_cache import graph_for

DECLARED = ("name", "aliases", "requires", "install_hint", "precisions", "quantizations", "modalities")


def test_names_and_aliases_resolve_to_one_class():
    assert backend_names() == ("ort", "openvino", "ipex", "torch")
    assert aliases() == {"onnxruntime": "ort", "ov": "openvino", "pytorch": "torch"}
    for alias, name in aliases().items():
        assert backend_class(alias) is backend_class(name)
    with pytest.raises(ModelError, match="unknown backend 'tensorrt'") as info:
        backend_class("tensorrt")
    assert all(repr(n) in str(info.value) for n in [*backend_names(), *aliases()])


@pytest.mark.parametrize("name", ["ort", "openvino", "ipex", "torch"])
def test_every_backend_declares_its_capabilities(name):
    cls = backend_class(name)
    assert all(hasattr(cls, attr) for attr in DECLARED), cls
    assert cls.precisions[0] == "fp32" and cls.quantizations[0] == "none"  # the defaults come first
    assert set(cls.modalities) <= {"text", "image", "audio"}


def test_options_a_backend_does_not_offer_name_those_that_do():
    assert check_options("ov", precision="bf16", quantize="int8-weights").name == "openvino"
    with pytest.raises(ModelError, match="offered by the ort backend only") as info:
        check_options("torch", quantize="dynamic-int8")
    assert "torch:" not in str(info.value)  # torch offers no other quantization to suggest
    with pytest.raises(ModelError, match="offered by no backend; choose one of 'fp32' or 'bf16'"):
        check_options("openvino", precision="fp16")


def test_a_missing_runtime_fails_with_its_install_hint(monkeypatch, tiny_classifier, fresh_cache):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(ModelError, match="needs the openvino package") as info:
        load_backend("ov", graph_for(tiny_classifier), threads=1, cache_dir=fresh_cache)
    assert info.value.hint == backend_class("openvino").install_hint


@pytest.mark.parametrize("name, artifact", [("ort", "model.onnx"), ("openvino", "model.xml"), ("torch", None)])
def test_every_backend_says_what_it_loaded(tiny_classifier, fresh_cache, name, artifact):
    backend = load_backend(name, graph_for(tiny_classifier), threads=1, cache_dir=fresh_cache)
    assert backend.name == name and backend.reduced is None and backend.description
    if artifact is None:
        assert backend.artifact is None
    else:
        assert isinstance(backend.artifact, Path) and backend.artifact.name == artifact
        assert backend.artifact.is_file()
    feed = {k: np.ones((1, 4), dtype=np.int64) for k in ("input_ids", "token_type_ids", "attention_mask")}
    assert backend.forward(feed)["logits"].shape == (1, 3)
