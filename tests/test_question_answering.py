"""question-answering on tiny random BERT and DistilBERT models: answers and character offsets identical to
transformers 4.57's QuestionAnsweringPipeline (transformers 5 removed it; it runs in its own environment,
scripts/transformers4-env.sh), scores within 1e-4, on every backend, over contexts several windows long; and
the job runner and the polars API end to end, with bad rows dead-lettered."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import batchinfer
from batchinfer.cli import main
from batchinfer.errors import EXIT_ROWS_FAILED
from tests.conftest import MAX_POSITIONS, minilm_path

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ["torch", "ort", "openvino"]
STORY = ("Ada Lovelace was an English mathematician and writer, chiefly known for her work on Charles Babbage's "
         "proposed mechanical general-purpose computer, the Analytical Engine. She was the first to recognise that "
         "the machine had applications beyond pure calculation. Born in London in 1815, she died in 1852. ")
QUESTIONS = ["Who was Ada Lovelace?", "When was she born?", "What is the Analytical Engine?", "Où? 東京 😀"]
CONTEXTS = [STORY * 3, STORY[:200], "A short context, here.", "Ünïcödé façade — naïve café 東京 😀 " * 4]
CALLS = [  # each a transformers call: keywords as the pipeline takes them
    {"question": QUESTIONS, "context": CONTEXTS},
    {"question": QUESTIONS, "context": CONTEXTS, "top_k": 3},
    {"question": QUESTIONS, "context": CONTEXTS, "handle_impossible_answer": True, "top_k": 2},
    {"question": QUESTIONS, "context": CONTEXTS, "max_answer_len": 4, "align_to_words": False},
    {"question": QUESTIONS, "context": CONTEXTS, "doc_stride": 16, "max_seq_len": 48, "batch_size": 3},
    {"question": QUESTIONS[0], "context": CONTEXTS[0]},
    {"question": QUESTIONS[1], "context": STORY * 30, "batch_size": 4},  # over 64 windows: several calls
]


def _tiny_qa(path: Path, kind: str) -> Path:
    import torch
    import transformers

    torch.manual_seed(9)
    if kind == "bert":
        config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                         intermediate_size=37, max_position_embeddings=MAX_POSITIONS,
                                         initializer_range=0.3)
        transformers.BertForQuestionAnswering(config).eval().save_pretrained(str(path))
        names = ["input_ids", "token_type_ids", "attention_mask"]
    else:
        config = transformers.DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=37,
                                               max_position_embeddings=MAX_POSITIONS, initializer_range=0.3)
        transformers.DistilBertForQuestionAnswering(config).eval().save_pretrained(str(path))
        names = ["input_ids", "attention_mask"]  # DistilBERT takes no token types
    tok = transformers.AutoTokenizer.from_pretrained(str(minilm_path()), model_input_names=names)
    tok.model_max_length = MAX_POSITIONS
    tok.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return {kind: _tiny_qa(tmp_path_factory.mktemp(f"tiny-qa-{kind}"), kind) for kind in ("bert", "distilbert")}


def transformers4(model: Path, calls: list[dict], tmp: Path) -> list:
    """What transformers 4.57's question-answering pipeline returns for each call (in its own environment)."""
    venv = os.environ.get("BATCHINFER_TRANSFORMERS4_VENV") or subprocess.run(
        ["bash", str(ROOT / "scripts" / "transformers4-env.sh")], capture_output=True, text=True,
        check=True).stdout.strip()
    request, answers = tmp / "request.json", tmp / "answers.json"
    request.write_text(json.dumps({"model": str(model), "calls": calls}))
    subprocess.run([f"{venv}/bin/python", str(ROOT / "tests" / "reference" / "qa_pipeline.py"), str(request),
                    str(answers)], check=True, capture_output=True)
    found = json.loads(answers.read_text())
    assert found["transformers"].startswith("4.57")
    return found["results"]


@pytest.fixture(scope="module")
def references(models, tmp_path_factory) -> dict[str, list]:
    return {kind: transformers4(path, CALLS + [job_call()], tmp_path_factory.mktemp(f"qa-ref-{kind}"))
            for kind, path in models.items()}


def assert_same(got, want):
    """The same answers, offsets and structure; scores within 1e-4."""
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)
        return
    assert isinstance(got, dict) and set(got) == set(want) == {"score", "start", "end", "answer"}
    assert (got["answer"], got["start"], got["end"]) == (want["answer"], want["start"], want["end"])
    assert got["score"] == pytest.approx(want["score"], abs=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_answers_equal_transformers_4_pipeline(models, references, kind, backend):
    qa = batchinfer.pipeline("question-answering", model=str(models[kind]), accelerator=backend)
    for call, want in zip(CALLS, references[kind]):
        assert_same(qa(**call), want)
    first = references[kind][0]
    assert len({a["answer"] for a in first}) > 1  # the rows get different answers
    from transformers import AutoTokenizer

    window = AutoTokenizer.from_pretrained(str(models[kind]))(QUESTIONS[0], CONTEXTS[0], truncation="only_second",
                                                              return_offsets_mapping=True)
    covered = max(end for _, end in window["offset_mapping"])  # the first window's last context character
    row0 = [a for result in references[kind][:5] for a in (result[0] if isinstance(result[0], list) else [result[0]])]
    from batchinfer.tasks.question_answering import WINDOWS_PER_CALL

    windows = AutoTokenizer.from_pretrained(str(models[kind]))(
        CALLS[6]["question"], CALLS[6]["context"], truncation="only_second", max_length=MAX_POSITIONS, stride=32,
        return_overflowing_tokens=True)["input_ids"]
    assert len(windows) > WINDOWS_PER_CALL  # the long context's windows took several backend calls
    assert max(a["start"] for a in row0) > covered  # answers from later windows count
    one = {"question": QUESTIONS[1], "context": CONTEXTS[1]}
    assert_same(qa(one), references[kind][0][1])  # a dict input, as transformers takes it


def test_bad_calls_are_refused(models):
    qa = batchinfer.pipeline("question-answering", model=str(models["bert"]), accelerator="ort")
    with pytest.raises(ValueError, match="`context` cannot be empty"):
        qa({"question": "who?", "context": ""})
    with pytest.raises(ValueError, match="`question` cannot be None"):
        qa({"question": None, "context": "x"})
    with pytest.raises(ValueError, match="same length"):
        qa(question=["a", "b"], context=["c"])


JOB_ROWS = [  # (question, context): good rows, then rows that must be dead-lettered
    (QUESTIONS[0], CONTEXTS[0]), (QUESTIONS[1], CONTEXTS[1]), (QUESTIONS[2], CONTEXTS[2]), (QUESTIONS[3], CONTEXTS[3]),
    ("who?", ""), (None, STORY), ("why " * 40, STORY),
]
GOOD = 4


def job_call() -> dict:
    rows = JOB_ROWS[:GOOD]
    return {"question": [q for q, _ in rows], "context": [c for _, c in rows], "top_k": 2}


def test_question_answering_job(tmp_path, models, references):
    frame = pl.DataFrame({"id": range(len(JOB_ROWS)), "q": [q for q, _ in JOB_ROWS], "c": [c for _, c in JOB_ROWS]})
    frame.write_parquet(tmp_path / "in.parquet")
    job = tmp_path / "qa.toml"
    job.write_text(f"""
[input]
path = "in.parquet"
columns = {{ question = "q", context = "c" }}
on_error = "dead-letter"

[model]
name = {json.dumps(str(models['bert']))}
task = "question-answering"
top_k = 2

[output]
path = "out"
""")
    result = CliRunner().invoke(main, ["run", str(job)])
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    assert "3 row(s) failed" in result.output
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    table = pq.read_table(str(tmp_path / "out"))
    assert out.columns == table.column_names == ["id", "q", "c", "answer", "score", "start", "end"]
    assert out["id"].to_list() == list(range(GOOD))
    assert table.column("answer").to_pylist() == out["answer"].to_list()
    want = references["bert"][-1]
    assert out["answer"].to_list() == [[a["answer"] for a in row] for row in want]
    assert out["start"].to_list() == [[a["start"] for a in row] for row in want]
    assert out["end"].to_list() == [[a["end"] for a in row] for row in want]
    np.testing.assert_allclose(np.concatenate(out["score"].to_list()), [a["score"] for row in want for a in row],
                               atol=1e-4)
    dead = pl.read_parquet(str(tmp_path / "out" / "_dead_letter" / "*.parquet"))
    why = dict(zip(dead["id"].to_list(), dead["_error"].to_list()))
    assert set(why) == {4, 5, 6}
    assert "context is empty" in why[4] and "question is empty" in why[5]
    assert "doc_stride" in why[6] and "shorten the question" in why[6]

    api = batchinfer.predict(frame.head(GOOD), {"question": "q", "context": "c"}, task="question-answering",
                             model=str(models["bert"]), top_k=2)
    assert api.equals(out)
    one = batchinfer.predict(frame.head(GOOD), {"question": "q", "context": "c"}, task="question-answering",
                             model=str(models["bert"]))  # top_k 1: one answer per row, plain columns
    assert one.schema["answer"] == pl.String and one.schema["start"] == pl.Int64
    assert one["answer"].to_list() == [row[0] for row in out["answer"].to_list()]



@pytest.mark.parametrize("backend, quantize", [("ort", "dynamic-int8"), ("openvino", "int8-weights")])
def test_int8_is_checked_against_fp32(models, backend, quantize):
    """Below fp32 the probe check runs on question/context pairs (and stops a model that drifts too far)."""
    from batchinfer.job import ModelSpec
    from batchinfer.pipelines import build_pipeline

    pipe = build_pipeline(ModelSpec(name=str(models["bert"]), task="question-answering", backend=backend,
                                    quantize=quantize))
    verdict = json.loads((pipe.backend.artifact.parent / f"agreement-{quantize}.json").read_text())
    assert verdict["mean_cosine"] > 0.99
    answers = pipe.predict(list(zip(QUESTIONS, CONTEXTS)))["answer"].to_pylist()
    assert len(answers) == len(QUESTIONS) and all(isinstance(a, str) and a for a in answers)
