"""fill-mask: parity with transformers' FillMaskPipeline on every backend, in batchinfer.pipeline, job files and
the polars API; rows without exactly one mask follow input.on_error; a model without an MLM head is refused."""

from __future__ import annotations

import json

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import batchinfer
from batchinfer.cli import main
from batchinfer.errors import EXIT_ROWS_FAILED, JobFileError, ModelError, RowErrors
from batchinfer.job import BatchingSpec, ModelSpec
from batchinfer.pipelines import build_pipeline

MASKED = ["The capital of France is [MASK].", "I [MASK] this movie", "[MASK]",
          "Ünïcödé [MASK] café 東京 😀 emoji", "numbers 12345 and [MASK] #$%&*", "ok [MASK]",
          "The quick brown fox jumps over the [MASK] dog near the riverbank at dawn."]
LONG_KEPT = "[MASK] " + "word " * 80  # truncated to 64 tokens, the mask kept
LONG_CUT = "word " * 80 + "[MASK]"  # the mask is truncated away: empty lists
TARGETS = ["good", "bad", "paris", "unaffordable"]  # several tokens: its first one, as transformers
COLUMNS = ("token", "token_str", "score", "sequence")
BACKENDS = ["ort", "openvino", "torch"]


@pytest.fixture(scope="module")
def reference(tiny_mlm):
    from transformers import pipeline

    return pipeline("fill-mask", model=str(tiny_mlm), device="cpu")


def same_row(got: list[dict], want: list[dict]) -> None:
    """One input's candidates: the same tokens, strings and sequences in the same order; scores within 1e-5."""
    assert isinstance(got, list) and len(got) == len(want)
    for g, w in zip(got, want):
        assert set(g) == set(w) == {"score", "token", "token_str", "sequence"}
        assert (g["token"], g["token_str"], g["sequence"]) == (w["token"], w["token_str"], w["sequence"])
        assert isinstance(g["token"], int) and isinstance(g["score"], float)
        assert g["score"] == pytest.approx(w["score"], abs=1e-5)


def same_rows(got: list, want: list) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        same_row(g, w)


def as_rows(columns: dict[str, list]) -> list[list[dict]]:
    """Output columns (lists per row) as transformers' list of candidate dicts per row."""
    return [[dict(zip(COLUMNS, cand)) for cand in zip(*(columns[c][i] for c in COLUMNS))]
            for i in range(len(columns["token"]))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_pipeline_matches_transformers(tiny_mlm, reference, backend):
    ours = batchinfer.pipeline("fill-mask", model=str(tiny_mlm), accelerator=backend)
    for kwargs in ({}, {"top_k": 3}, {"targets": TARGETS}, {"targets": TARGETS[:2], "top_k": 5},
                   {"targets": "good", "top_k": 1}, {"batch_size": 2, "tokenizer_kwargs": {"truncation": True}}):
        want = reference(MASKED, **kwargs)
        same_rows(ours(MASKED, **kwargs), want)
        same_row(ours(MASKED[3], **kwargs), reference(MASKED[3], **kwargs))
    assert len(reference(MASKED[0], targets=TARGETS[:2], top_k=5)) == 2  # top_k capped at the targets
    # the tiny model's best tokens differ between inputs (else the comparison says little)
    assert len({row[0]["token"] for row in reference(MASKED)}) > 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_several_masks_and_no_mask_as_transformers(tiny_mlm, reference, backend):
    from transformers.pipelines.base import PipelineException

    ours = batchinfer.pipeline("fill-mask", model=str(tiny_mlm), accelerator=backend)
    text = "a [MASK] and [MASK] too"  # transformers: one list per mask, special tokens kept in the sequence
    want = reference(text, top_k=2)
    got = ours(text, top_k=2)
    assert len(got) == len(want) == 2
    for g, w in zip(got, want):
        same_row(g, w)
    with pytest.raises(PipelineException, match=r"No mask_token \(\[MASK\]\) found"):
        reference("no mask here")
    with pytest.raises(PipelineException, match=r"No mask_token \(\[MASK\]\) found"):
        ours(["a [MASK]", "no mask here"])


def test_list_of_one_as_transformers(tiny_mlm, reference):
    ours = batchinfer.pipeline("fill-mask", model=str(tiny_mlm), accelerator="ort")
    same_row(ours([MASKED[0]]), reference([MASKED[0]]))


def test_three_phases(tiny_mlm, reference):
    ours = batchinfer.pipeline("fill-mask", model=str(tiny_mlm), accelerator="ort")
    same_row(ours.postprocess(ours._forward(ours.preprocess(MASKED[0]))), reference(MASKED[0]))


def test_long_input_truncated_through_tokenizer_kwargs(tiny_mlm, reference):
    ours = batchinfer.pipeline("fill-mask", model=str(tiny_mlm), accelerator="ort")
    kwargs = {"tokenizer_kwargs": {"truncation": True}}
    same_row(ours(LONG_KEPT, **kwargs), reference(LONG_KEPT, **kwargs))


def test_options_are_checked(tiny_mlm):
    with pytest.raises(ValueError, match="targets is empty"):
        ModelSpec(name="m", task="fill-mask", targets=[])
    with pytest.raises(ValueError, match="top_k"):
        ModelSpec(name="m", task="fill-mask", top_k=0)
    with pytest.raises(JobFileError, match="targets is empty"):
        batchinfer.predict(pl.DataFrame({"text": ["a [MASK]"]}), "text", task="fill-mask", model=str(tiny_mlm),
                           targets=[])
    ours = batchinfer.pipeline("fill-mask", model=str(tiny_mlm), accelerator="ort")
    with pytest.raises(TypeError, match="tokenizer_kwargs max_length"):
        ours("a [MASK]", tokenizer_kwargs={"max_length": 8})
    with pytest.raises(TypeError, match="unexpected keyword"):
        ours("a [MASK]", aggregation_strategy="first")


def write_job(tmp_path, model, input_path="in.parquet", *, model_extra: dict | None = None,
              input_extra: dict | None = None, name="job.toml") -> str:
    def lines(section: dict | None) -> str:
        return "\n".join(f"{k} = {json.dumps(v)}" for k, v in (section or {}).items())

    path = tmp_path / name
    path.write_text(f"""
[input]
path = "{input_path}"
column = "text"
batch_rows = 4
{lines(input_extra)}
[model]
name = {json.dumps(str(model))}
task = "fill-mask"
{lines(model_extra)}
[output]
path = "out"
""")
    return str(path)


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture(scope="module")
def job_texts() -> list[str]:
    return [*MASKED, LONG_KEPT, LONG_CUT]


def test_job_writes_transformers_answers(tmp_path, tiny_mlm, reference, job_texts):
    frame = pl.DataFrame({"id": range(len(job_texts)), "text": job_texts})
    frame.write_parquet(tmp_path / "in.parquet")
    result = run("run", write_job(tmp_path, tiny_mlm, model_extra={"top_k": 3}))
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    assert out.columns == ["id", "text", *COLUMNS]
    assert out.schema["token"] == pl.List(pl.Int64) and out.schema["score"] == pl.List(pl.Float32)
    assert out.schema["token_str"] == out.schema["sequence"] == pl.List(pl.String)
    table = pq.read_table(str(tmp_path / "out"))
    assert table.schema.field("token").type == pa.list_(pa.int64())
    assert table.schema.field("token_str").type == pa.list_(pa.string())
    assert table.schema.field("score").type == pa.list_(pa.float32())
    assert table.schema.field("sequence").type == pa.list_(pa.string())
    assert table.column("id").to_pylist() == out["id"].to_list() == list(range(len(job_texts)))
    want = reference(job_texts[:-1], top_k=3, tokenizer_kwargs={"truncation": True})
    for columns in (out.to_dict(as_series=False), table.to_pydict()):
        rows = as_rows(columns)
        same_rows(rows[:-1], want)
        assert rows[-1] == []  # its mask was truncated away
    assert json.loads((tmp_path / "out" / "_SUCCESS").read_text())["truncated"] == 2

    api = batchinfer.predict(frame, "text", task="fill-mask", model=str(tiny_mlm), top_k=3)
    assert api.equals(out)
    targeted = batchinfer.predict(frame.head(3), "text", task="fill-mask", model=str(tiny_mlm), targets=TARGETS)
    same_rows(as_rows(targeted.to_dict(as_series=False)), reference(job_texts[:3], targets=TARGETS))


def test_predict_matches_pipeline_on_any_batching(tiny_mlm, reference, job_texts):
    pipe = build_pipeline(ModelSpec(name=str(tiny_mlm), task="fill-mask", top_k=4))
    want = reference(job_texts[:-1], top_k=4, tokenizer_kwargs={"truncation": True})
    for batching in (BatchingSpec(batch_size=1), BatchingSpec(batch_size=3), BatchingSpec(batch_size=64)):
        got = pipe.predict(job_texts, batching)
        rows = as_rows({c: got[c].to_pylist() for c in COLUMNS})
        same_rows(rows[:-1], want)
        assert rows[-1] == []
    assert {c: a.type for c, a in pipe.predict([]).items()} == {f.name: f.type for f in pipe.task.output_schema()}


def test_check_rows_names_rows_without_one_mask(tiny_mlm):
    task = build_pipeline(ModelSpec(name=str(tiny_mlm), task="fill-mask")).task
    why = task.check_rows(["a [MASK]", "no mask", "[MASK] and [MASK]", "", LONG_CUT])
    assert why == {1: "text has no [MASK] token; fill-mask predicts one masked token per row",
                   2: "text has 2 [MASK] tokens; fill-mask predicts one masked token per row",
                   3: "text has no [MASK] token; fill-mask predicts one masked token per row"}


BAD = ["a [MASK] b", "no mask here", "two [MASK] and [MASK]", "ok [MASK]", "fine [MASK] too"]


@pytest.mark.parametrize("on_error", ["skip", "dead-letter", "fail"])
def test_rows_without_one_mask_are_bad_rows(tmp_path, tiny_mlm, reference, on_error):
    pl.DataFrame({"id": range(len(BAD)), "text": BAD}).write_parquet(tmp_path / "in.parquet")
    result = run("run", write_job(tmp_path, tiny_mlm, input_extra={"on_error": on_error}))
    if on_error == "fail":
        assert result.exit_code == RowErrors.exit_code, result.output
        assert "in.parquet, row 1: text has no [MASK] token" in result.output
        return
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    assert "2 row(s) failed" in result.output
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    assert out["id"].to_list() == [0, 3, 4]
    same_rows(as_rows(out.to_dict(as_series=False)), reference([BAD[0], BAD[3], BAD[4]]))
    if on_error == "dead-letter":
        dead = pl.read_parquet(str(tmp_path / "out" / "_dead_letter" / "*.parquet")).sort("_source_row")
        assert dead["id"].to_list() == dead["_source_row"].to_list() == [1, 2]
        assert dead["_error"].to_list() == ["text has no [MASK] token; fill-mask predicts one masked token per row",
                                            "text has 2 [MASK] tokens; fill-mask predicts one masked token per row"]


def test_model_without_mlm_head_is_refused(tmp_path):
    from tests.conftest import minilm_path

    model = str(minilm_path())  # all-MiniLM-L6-v2: a BertModel, no MLM head
    pl.DataFrame({"text": ["a [MASK]"]}).write_parquet(tmp_path / "in.parquet")
    result = run("run", write_job(tmp_path, model))
    assert result.exit_code == ModelError.exit_code, result.output
    assert "BertModel" in result.output and "ForMaskedLM" in result.output and model in result.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(ModelError, match="BertModel, which has no masked-language-model head") as info:
        batchinfer.predict(pl.DataFrame({"text": ["a [MASK]"]}), "text", task="fill-mask", model=model)
    assert "ForMaskedLM" in str(info.value)
    with pytest.raises(ModelError, match="no masked-language-model head"):
        batchinfer.pipeline("fill-mask", model=model, accelerator="ort")


def test_compare_and_int8_gate(tmp_path, tiny_mlm):
    pipe = build_pipeline(ModelSpec(name=str(tiny_mlm), task="fill-mask"))
    got = pipe.predict(MASKED)
    assert pipe.task.compare(got, got) == (1.0, "share of equal token")
    other = dict(got, token=pa.array([row[::-1] for row in got["token"].to_pylist()], pa.list_(pa.int64())))
    agreement, _ = pipe.task.compare(other, got)
    assert agreement == pytest.approx(0.0)
    pl.DataFrame({"text": MASKED}).write_parquet(tmp_path / "in.parquet")
    result = run("run", write_job(tmp_path, tiny_mlm, model_extra={"quantize": "dynamic-int8", "min_agreement": 0}))
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    assert out.height == len(MASKED) and out["token"].list.len().to_list() == [5] * len(MASKED)
    assert json.loads((tmp_path / "out" / "_SUCCESS").read_text())["failed"] == 0


def test_listed_by_the_cli():
    result = run("tasks")
    assert result.exit_code == 0, result.output
    listing = result.output[result.output.index("fill-mask"):]
    assert "columns: token, token_str, score, sequence" in listing.splitlines()[2]
