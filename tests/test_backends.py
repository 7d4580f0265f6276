"""The backend registry: names and aliases, declared capabilities, and what every backend tells its callers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from batchinfer.backends import aliases, backend_class, backend_names, check_options, load_backend
from batchinfer.errors import ModelError
from tests.test_export_cache import graph_for

DECLARED = ("name", "aliases", "requires", "install_hint", "precisions", "quantizations", "modalities", "devices")


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
    assert cls.devices[0] == "cpu" and set(cls.devices) <= {"cpu", "cuda", "gpu"}  # the CPU path is the default


def test_options_a_backend_does_not_offer_name_those_that_do():
    assert check_options("ov", precision="bf16", quantize="int8-weights").name == "openvino"
    with pytest.raises(ModelError, match="offered by the ort backend only") as info:
        check_options("torch", quantize="dynamic-int8")
    assert "torch:" not in str(info.value)  # torch offers no other quantization to suggest
    with pytest.raises(ModelError, match="offered by no backend; choose one of 'fp32', 'bf16' or 'fp16'"):
        check_options("openvino", precision="fp8")
    with pytest.raises(ModelError, match="'fp16' is offered by the torch backend only"):
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


def test_out_of_memory_halves_the_batch_and_loses_no_row(tiny_classifier, caplog):
    """A runtime's out-of-memory error (simulated: more than 3 rows at once do not fit) runs the batch in
    halves, and later batches stay under what fitted; the answers are those of an unhindered run. One row that
    does not fit is a ModelError that says what to do."""
    import logging

    from batchinfer.errors import ModelError
    from batchinfer.job import BatchingSpec, ModelSpec
    from batchinfer.pipelines import build_pipeline
    from tests.conftest import TEXTS

    texts = [f"{t} {i}" for i, t in enumerate(TEXTS * 3)]
    pipe = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend="torch"))
    want = pipe.predict(texts, BatchingSpec(batch_size=8))
    real, seen = pipe.backend.forward, []

    def small_memory(inputs):
        seen.append(len(inputs["input_ids"]))
        if len(inputs["input_ids"]) > 3:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")  # torch's words
        return real(inputs)

    pipe.backend.forward = small_memory
    try:
        with caplog.at_level(logging.WARNING, logger="batchinfer"):
            got = pipe.predict(texts, BatchingSpec(batch_size=8))
        assert got["label"].to_pylist() == want["label"].to_pylist()
        np.testing.assert_allclose(got["score"].to_numpy(), want["score"].to_numpy(), atol=1e-6)
        assert "out of memory on a batch of 8 rows" in caplog.text
        assert max(seen[seen.index(2):]) <= 3 and seen.count(8) == 1  # after the first: never 8 again
        pipe.backend.forward = lambda inputs: (_ for _ in ()).throw(MemoryError())
        with pytest.raises(ModelError, match="out of memory on a single row"):
            pipe.predict(texts[:1])
        pipe.backend.forward = lambda inputs: (_ for _ in ()).throw(RuntimeError("shape mismatch"))
        with pytest.raises(RuntimeError, match="shape mismatch"):  # other errors are not retried
            pipe.predict(texts[:4])
    finally:
        pipe.backend.forward = real
        pipe._token_cap = None


QUIET = """
import json, os, sys, threading
from batchinfer.model.openvino_quiet import nncf, openvino
openvino(); nncf()
print(json.dumps({"ci": os.environ.get("CI"), "threads": [t.name for t in threading.enumerate() if not t.daemon]}))
"""


@pytest.mark.parametrize("answer", [None, "1"])
def test_openvino_and_nncf_import_without_telemetry_unless_the_user_opted_in(tmp_path, answer):
    """Left alone, `import openvino` / `import nncf` send a usage event and count runs in ~/intel/stats; ours
    sends nothing (no stats, no sending thread left), and leaves CI as it was, unless the user answered
    OpenVINO's consent question (here: yes), which stands."""
    import json
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    (home / "intel").mkdir(parents=True)
    if answer:
        (home / "intel" / "openvino_telemetry").write_text(answer)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TF_BUILD", "JENKINS_URL")} | {"HOME": str(home)}
    done = subprocess.run([sys.executable, "-c", QUIET], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["ci"] is None
    counted = (home / "intel" / "stats").exists()
    if answer:
        assert counted  # the user's yes: OpenVINO's own behaviour
    else:
        assert not counted and seen["threads"] == ["MainThread"], seen
