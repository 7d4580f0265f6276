"""text-classification on text pairs (cross-encoders, NLI) and on texts built from several columns: parity with
transformers' pipeline on {"text", "text_pair"} inputs and with sentence-transformers' CrossEncoder, in
batchinfer.pipeline, job files (input.columns, input.template) and the polars API."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import batchinfer
from batchinfer.cli import main
from batchinfer.errors import EXIT_ROWS_FAILED, JobFileError

PAIRS = [("how old is the moon", "the moon is about 4.5 billion years old"),
         ("best pizza in town", "I like trains, and buses"),
         ("Ünïcödé 東京", "😀 emoji café — naïve"),
         ("a", "a much longer passage about nothing in particular " * 2),
         ("what is the capital of France?", "Paris is the capital and largest city of France."),
         ("ok", "fine")]
LONG_PAIR = ("a short query", "passage words " * 40)  # over 64 tokens together: truncated longest-first
BACKENDS = ["ort", "openvino", "torch"]


def as_dicts(pairs) -> list[dict]:
    return [{"text": a, "text_pair": b} for a, b in pairs]


def assert_same(got, want):
    """Equal structure and labels, scores within 1e-5."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys()
        assert got["label"] == want["label"]
        assert got["score"] == pytest.approx(want["score"], abs=1e-5)
    else:
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)


@pytest.fixture(scope="module")
def models(tiny_cross_encoder, tiny_nli):
    return {"cross-encoder": tiny_cross_encoder, "nli": tiny_nli}


@pytest.fixture(scope="module")
def references(models):
    from transformers import pipeline

    return {name: pipeline("text-classification", model=str(path), device="cpu") for name, path in models.items()}


@pytest.mark.parametrize("kind", ["cross-encoder", "nli"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_pairs_in_the_pipeline_match_transformers(models, references, kind, backend):
    ours = batchinfer.pipeline("text-classification", model=str(models[kind]), accelerator=backend)
    reference = references[kind]
    for kwargs in ({}, {"top_k": 2}, {"top_k": None}, {"function_to_apply": "none"}):
        assert_same(ours(as_dicts(PAIRS[:1])[0], **kwargs), reference(as_dicts(PAIRS[:1])[0], **kwargs))
        assert_same(ours(as_dicts(PAIRS), **kwargs), reference(as_dicts(PAIRS), **kwargs))
    both = as_dicts([*PAIRS, LONG_PAIR])
    assert_same(ours(both, truncation=True, batch_size=3), reference(both, truncation=True, batch_size=3))
    if kind == "nli":  # the pair, not the first text alone, is what is scored
        alone = reference([a for a, _ in PAIRS], top_k=None)
        assert reference(as_dicts(PAIRS), top_k=None) != alone


def test_pair_dict_errors(models):
    ours = batchinfer.pipeline("text-classification", model=str(models["nli"]), accelerator="ort")
    with pytest.raises(ValueError, match="keys text, text_pair"):
        ours({"text": "a", "passage": "b"})
    with pytest.raises(ValueError, match="text required"):
        ours({"text_pair": "b"})


def write_job(tmp_path, model, input_lines: str, *, name="job.toml", model_lines: str = "") -> str:
    path = tmp_path / name
    path.write_text(f"""
[input]
{input_lines}
batch_rows = 4

[model]
name = {json.dumps(str(model))}
task = "text-classification"
{model_lines}

[output]
path = "out"
""")
    return str(path)


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def pair_frame() -> pl.DataFrame:
    pairs = [*PAIRS, LONG_PAIR]
    return pl.DataFrame({"id": range(len(pairs)), "query": [a for a, _ in pairs],
                         "passage": [b for _, b in pairs]})


COLUMNS = 'columns = { text = "query", text_pair = "passage" }'


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("kind", ["cross-encoder", "nli"])
def test_pair_job_matches_cross_encoder_and_transformers(tmp_path, models, references, fmt, kind):
    frame = pair_frame()
    getattr(frame, f"write_{fmt}")(tmp_path / f"in.{fmt}")
    result = run("run", write_job(tmp_path, models[kind], f'path = "in.{fmt}"\n{COLUMNS}'))
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    table = pq.read_table(str(tmp_path / "out"))
    assert out.columns == table.column_names == ["id", "query", "passage", "label", "score"]
    assert out.select("id", "query", "passage").equals(frame)
    assert table.column("label").to_pylist() == out["label"].to_list()
    np.testing.assert_array_equal(table.column("score").to_numpy(), out["score"].to_numpy())
    pairs = list(zip(frame["query"], frame["passage"]))
    want = references[kind](as_dicts(pairs), truncation=True)
    assert out["label"].to_list() == [w["label"] for w in want]
    np.testing.assert_allclose(out["score"].to_numpy(), [w["score"] for w in want], atol=1e-4)
    if kind == "cross-encoder":
        from sentence_transformers import CrossEncoder

        scores = CrossEncoder(str(models[kind]), device="cpu").predict(pairs)  # sigmoid of the one logit
        np.testing.assert_allclose(out["score"].to_numpy(), scores, atol=1e-4)
        assert np.ptp(scores) > 1e-3  # the pairs score differently
    else:
        assert len(set(out["label"])) > 1
    assert json.loads((tmp_path / "out" / "_SUCCESS").read_text())["truncated"] == 1

    api = batchinfer.predict(frame, {"text": "query", "text_pair": "passage"}, task="text-classification",
                             model=str(models[kind]))
    assert api.equals(out)


def titled_frame() -> pl.DataFrame:
    return pl.DataFrame({"id": [0, 1, 2, 3], "title": ["Moon", None, "Pizza", "東京"],
                         "body": ["it is old", "no title here", None, "Ünïcödé 😀"]})


def test_template_builds_the_text(tmp_path, tiny_classifier):
    from transformers import pipeline

    frame = titled_frame()
    frame.write_parquet(tmp_path / "in.parquet")
    template = "Title: {title}\n{body}"
    result = run("run", write_job(tmp_path, tiny_classifier, f'path = "in.parquet"\ntemplate = {json.dumps(template)}'))
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    texts = [template.format(title=t or "", body=b or "") for t, b in zip(frame["title"], frame["body"])]
    want = pipeline("text-classification", model=str(tiny_classifier), device="cpu")(texts)
    assert out["id"].to_list() == [0, 1, 2, 3]
    assert out["label"].to_list() == [w["label"] for w in want]
    np.testing.assert_allclose(out["score"].to_numpy(), [w["score"] for w in want], atol=1e-4)

    api = batchinfer.predict(frame, task="text-classification", model=str(tiny_classifier), template=template)
    assert api.equals(out)

    result = run("run", write_job(tmp_path, tiny_classifier, f'path = "in.parquet"\ntemplate = {json.dumps(template)}'
                                  '\nnull_text = "error"\non_error = "skip"', name="strict.toml"),
                 "--set", "output.mode=overwrite")
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    assert "2 row(s) failed" in result.output
    strict = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    assert strict["id"].to_list() == [0, 3]
    assert strict["label"].to_list() == [want[0]["label"], want[3]["label"]]


def test_template_naming_a_missing_column(tmp_path, tiny_classifier):
    titled_frame().write_parquet(tmp_path / "in.parquet")
    result = run("run", write_job(tmp_path, tiny_classifier, 'path = "in.parquet"\ntemplate = "{title}: {summary}"'))
    assert result.exit_code == JobFileError.exit_code, result.output
    assert "summary" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("lines, message", [
    ('columns = { text_pair = "passage" }', "'text'"),
    ('columns = { text = "query", passage = "passage" }', "'passage' is not an input of text-classification"),
    (f'column = "query"\n{COLUMNS}', "not column and columns"),
])
def test_input_roles_are_checked_before_the_model_loads(tmp_path, tiny_classifier, lines, message):
    pair_frame().write_parquet(tmp_path / "in.parquet")
    result = run("run", write_job(tmp_path, tiny_classifier, f'path = "in.parquet"\n{lines}'))
    assert result.exit_code == JobFileError.exit_code, result.output
    assert message in result.output
    assert not (tmp_path / "out").exists()
