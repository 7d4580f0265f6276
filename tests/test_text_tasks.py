"""token-classification and zero-shot-classification: parity with transformers' pipelines on every backend,
in job files, in batchinfer.pipeline and in the polars API."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import batchinfer
from batchinfer.cli import main
from batchinfer.errors import JobFileError, ModelError
from batchinfer.job import BatchingSpec, ModelSpec
from batchinfer.pipelines import build_pipeline

SENTENCES = ["John Smith lives in New York and works at Acme.", "Marie Curie was born in Warsaw.",
             "nothing here", "", "Unbelievable tokenization: unaffordable, reconstructions!",
             "Ünïcödé Zürich Москва 東京 " * 4]
LABELS = ["sports", "politics", "technology", "cooking"]


def same_entities(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if k != "score"} == {k: (int(v) if k in ("index", "start", "end") else v)
                                                                 for k, v in w.items() if k != "score"}
        assert g["score"] == pytest.approx(float(w["score"]), abs=1e-4)


@pytest.mark.parametrize("strategy", ["none", "simple", "first", "average", "max"])
@pytest.mark.parametrize("backend", ["ort", "openvino", "torch"])
def test_token_classification_matches_transformers(tiny_ner, strategy, backend):
    from transformers import pipeline

    reference = pipeline("token-classification", model=str(tiny_ner), device="cpu", aggregation_strategy=strategy)
    want = reference(SENTENCES)
    pipe = build_pipeline(ModelSpec(name=str(tiny_ner), task="token-classification", backend=backend,
                                    aggregation_strategy=strategy))
    got = pipe.predict(SENTENCES, BatchingSpec(batch_size=4))["entities"].to_pylist()
    assert sum(map(len, want)) > 3, "the tiny model should find some entities"
    for g, w in zip(got, want):
        same_entities(g, w)
    ours = batchinfer.pipeline("token-classification", model=str(tiny_ner), accelerator=backend)
    for g, w in zip(ours(SENTENCES, aggregation_strategy=strategy), want):
        same_entities(g, w)
    same_entities(ours(SENTENCES[0], aggregation_strategy=strategy), want[0])


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("backend", ["ort", "openvino", "torch"])
def test_zero_shot_matches_transformers(tiny_nli, multi_label, backend):
    from transformers import pipeline

    reference = pipeline("zero-shot-classification", model=str(tiny_nli), device="cpu")
    template = "This text is about {}."
    sentences = [s for s in SENTENCES if s]  # transformers refuses an empty sequence
    want = reference(sentences, candidate_labels=LABELS, hypothesis_template=template, multi_label=multi_label)
    pipe = build_pipeline(ModelSpec(name=str(tiny_nli), task="zero-shot-classification", backend=backend,
                                    candidate_labels=LABELS, hypothesis_template=template, multi_label=multi_label))
    got = pipe.predict(sentences, BatchingSpec(batch_size=8))
    assert got["labels"].to_pylist() == [w["labels"] for w in want]
    np.testing.assert_allclose(np.array(got["scores"].to_pylist()), [w["scores"] for w in want], atol=1e-4)
    ours = batchinfer.pipeline("zero-shot-classification", model=str(tiny_nli), accelerator=backend)
    mine = ours(sentences, candidate_labels=LABELS, hypothesis_template=template, multi_label=multi_label)
    assert [m["labels"] for m in mine] == [w["labels"] for w in want]
    assert [m["sequence"] for m in mine] == sentences
    np.testing.assert_allclose([m["scores"] for m in mine], [w["scores"] for w in want], atol=1e-4)
    single = ours(sentences[0], candidate_labels=LABELS, hypothesis_template=template, multi_label=multi_label)
    assert single["labels"] == want[0]["labels"]


def test_both_tasks_in_job_files_and_polars(tmp_path, tiny_ner, tiny_nli):
    frame = pl.DataFrame({"id": range(len(SENTENCES)), "text": SENTENCES})
    frame.write_parquet(tmp_path / "in.parquet")
    (tmp_path / "ner.toml").write_text(f"""
[input]
path = "in.parquet"
column = "text"
[model]
name = {json.dumps(str(tiny_ner))}
task = "token-classification"
aggregation_strategy = "first"
[output]
path = "ner"
""")
    (tmp_path / "zs.toml").write_text(f"""
[input]
path = "in.parquet"
column = "text"
[model]
name = {json.dumps(str(tiny_nli))}
task = "zero-shot-classification"
candidate_labels = {json.dumps(LABELS)}
multi_label = true
[output]
path = "zs"
""")
    for name in ("ner", "zs"):
        result = CliRunner().invoke(main, ["run", str(tmp_path / f"{name}.toml")])
        assert result.exit_code == 0, result.output
    ner = pl.read_parquet(str(tmp_path / "ner" / "*.parquet"))
    assert ner.schema["entities"] == pl.List(pl.Struct({"entity_group": pl.String, "score": pl.Float32,
                                                        "word": pl.String, "start": pl.Int64, "end": pl.Int64}))
    api = batchinfer.predict(frame, "text", task="token-classification", model=str(tiny_ner),
                             aggregation_strategy="first")
    assert api.equals(ner)
    zs = pl.read_parquet(str(tmp_path / "zs" / "*.parquet"))
    assert all(sorted(row) == sorted(LABELS) for row in zs["labels"].to_list())
    api = batchinfer.predict(frame, "text", task="zero-shot-classification", model=str(tiny_nli),
                             candidate_labels=LABELS, multi_label=True)
    assert api.equals(zs)


def test_clear_errors(tmp_path, tiny_classifier, tiny_nli):
    with pytest.raises(ValueError, match="needs candidate_labels"):
        ModelSpec(name="m", task="zero-shot-classification")
    with pytest.raises(ValueError, match="needs a {}"):
        ModelSpec(name="m", task="zero-shot-classification", candidate_labels=["a"], hypothesis_template="About")
    with pytest.raises(ModelError, match="no 'entailment' label"):
        build_pipeline(ModelSpec(name=str(tiny_classifier), task="zero-shot-classification", candidate_labels=["a"]))
    with pytest.raises(ModelError, match="not a token-classification model"):
        build_pipeline(ModelSpec(name=str(tiny_nli), task="token-classification"))
    with pytest.raises(JobFileError, match="aggregation_strategy"):
        batchinfer.predict(pl.DataFrame({"text": ["x"]}), "text", task="token-classification", model=str(tiny_nli),
                           aggregation_strategy="longest")
