"""The ONNX export is made once per fingerprint, loaded from the cache after, and never half-used."""

from __future__ import annotations

import json

import pytest

import batchinfer.model.onnx_export as export
from batchinfer.errors import ModelError
from batchinfer.model import ModelGraph, resolve_model
from tests.conftest import copy_model


def graph_for(path) -> ModelGraph:
    return ModelGraph(ref=resolve_model(str(path)), auto_class="AutoModelForSequenceClassification",
                      output_name="logits", input_names=("input_ids", "token_type_ids", "attention_mask"))


def count_exports(monkeypatch) -> list:
    calls: list = []
    real = export._export

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "_export", counting)
    return calls


def test_second_load_uses_cache_without_exporting(tiny_classifier, fresh_cache, monkeypatch):
    calls = count_exports(monkeypatch)
    first = export.export_onnx(graph_for(tiny_classifier), fresh_cache)
    mtime = first.stat().st_mtime_ns
    second = export.export_onnx(graph_for(tiny_classifier), fresh_cache)
    assert first == second and len(calls) == 1
    assert second.stat().st_mtime_ns == mtime
    meta = json.loads((first.parent / export.COMPLETE).read_text())
    assert meta["opset"] == export.OPSET and meta["auto_class"] == "AutoModelForSequenceClassification"
    assert not [p for p in first.parent.parent.iterdir() if ".tmp-" in p.name]


def test_fingerprint_changes_with_model_contents(tiny_classifier, tmp_path):
    model = copy_model(tiny_classifier, tmp_path / "m")
    before = export.fingerprint(graph_for(model))
    config = json.loads((model / "config.json").read_text())
    config["id2label"]["0"] = "bad"
    (model / "config.json").write_text(json.dumps(config))
    assert export.fingerprint(graph_for(model)) != before
    assert export.fingerprint(graph_for(model), opset=18) != export.fingerprint(graph_for(model))


def test_half_written_export_is_never_loaded(tiny_classifier, fresh_cache, monkeypatch):
    graph = graph_for(tiny_classifier)
    final = fresh_cache / "onnx" / export.fingerprint(graph)
    final.mkdir(parents=True)
    (final / "model.onnx").write_bytes(b"truncated garbage")  # a crash before the marker was written
    calls = count_exports(monkeypatch)
    path = export.export_onnx(graph, fresh_cache)
    assert len(calls) == 1 and path.stat().st_size > 1000
    assert (final / export.COMPLETE).is_file()


def test_failed_export_leaves_nothing_behind(tiny_classifier, fresh_cache, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(export, "_export", boom)
    with pytest.raises(ModelError, match="disk on fire"):
        export.export_onnx(graph_for(tiny_classifier), fresh_cache)
    assert list((fresh_cache / "onnx").iterdir()) == []


def test_missing_model_folder_and_offline_hub_id(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model(str(tmp_path / "no-such-model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as info:
        resolve_model("no-such-org/no-such-model-xyz")
    assert "local folder" in str(info.value)


def test_openvino_ir_is_converted_once_from_the_onnx_export(tiny_classifier, fresh_cache, monkeypatch):
    import openvino as ov

    from batchinfer.model import openvino_ir as ov_backend

    graph = graph_for(tiny_classifier)
    first = ov_backend.ir_path(graph, fresh_cache)
    assert first.is_file() and first.with_suffix(".bin").is_file()
    assert first.parent.name.startswith(export.fingerprint(graph))

    def no_convert(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(ov, "save_model", no_convert)
    assert ov_backend.ir_path(graph, fresh_cache) == first


def test_openvino_compiles_through_its_model_cache_and_survives_a_damaged_one(tiny_classifier, fresh_cache):
    """The compiled model is kept in the IR's folder (a later run imports it); a damaged blob is not an error:
    it is emptied, the IR compiled again, and the answers are the same."""
    import numpy as np

    from batchinfer.backends import load_backend
    from batchinfer.backends.openvino import COMPILED

    graph = graph_for(tiny_classifier)
    feed = {"input_ids": np.array([[2, 7, 9, 3]]), "token_type_ids": np.zeros((1, 4), dtype=np.int64),
            "attention_mask": np.ones((1, 4), dtype=np.int64)}
    first = load_backend("openvino", graph, threads=1, cache_dir=fresh_cache)
    blobs = list((first.artifact.parent / COMPILED).rglob("*.blob"))
    assert len(blobs) == 1 and blobs[0].stat().st_size > 0
    want = first.forward(feed)["logits"]
    blobs[0].write_bytes(b"not a compiled model")
    again = load_backend("openvino", graph, threads=1, cache_dir=fresh_cache)
    np.testing.assert_allclose(again.forward(feed)["logits"], want, atol=1e-6)


def test_openvino_keeps_each_compile_config_in_its_own_model_cache(tiny_classifier, fresh_cache):
    """OpenVINO's cache key leaves out the precision hint: a bf16 compile after an fp32 one imported the fp32
    blob and gave NaN. Each config has its own blobs, and the bf16 model's answers stay near fp32's."""
    import numpy as np

    from batchinfer.backends import load_backend
    from batchinfer.backends.base import cpu_has_bf16
    from batchinfer.backends.openvino import COMPILED

    graph = graph_for(tiny_classifier)
    feed = {"input_ids": np.array([[2, 7, 9, 3], [2, 5, 3, 0]]), "token_type_ids": np.zeros((2, 4), dtype=np.int64),
            "attention_mask": np.array([[1, 1, 1, 1], [1, 1, 1, 0]])}
    fp32 = load_backend("openvino", graph, threads=1, cache_dir=fresh_cache)
    two_threads = load_backend("openvino", graph, threads=2, cache_dir=fresh_cache)
    folders = {p.parent for p in (fp32.artifact.parent / COMPILED).rglob("*.blob")}
    assert len(folders) == 2  # one per config
    want = fp32.forward(feed)["logits"]
    np.testing.assert_allclose(two_threads.forward(feed)["logits"], want, atol=1e-5)
    if cpu_has_bf16():
        bf16 = load_backend("openvino", graph, threads=1, cache_dir=fresh_cache, precision="bf16")
        got = bf16.forward(feed)["logits"]
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, want, atol=0.05)
        assert len({p.parent for p in (fp32.artifact.parent / COMPILED).rglob("*.blob")}) == 3
