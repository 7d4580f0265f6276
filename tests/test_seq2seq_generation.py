"""text2text-generation, summarization and translation on tiny random encoder-decoders (T5, BART and Marian
shapes): token-identical to transformers' `generate` on every backend, in the output format of transformers
4.5x's pipelines (which transformers 5 removed), and through a job."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from batchinfer.job import BatchingSpec, ModelSpec
from batchinfer.pipelines import build_pipeline
from tests.tiny_decoders import build_seq2seq, ending_early, generate_call_sizes

KINDS = ("t5", "bart", "marian")
BACKENDS = ("torch", "ort", "openvino")
INPUTS = ["the quick brown fox jumps over the lazy dog", "hello", "name: Ada Lovelace; born: 1815; field:",
          "ok ok ok", "summarise this ticket: the printer is broken again", "Ünïcödé façade — naïve café 東京 😀"]


@pytest.fixture(scope="session")
def seq2seq(tmp_path_factory) -> dict[str, Path]:
    return {kind: build_seq2seq(tmp_path_factory.mktemp(f"tiny-{kind}"), kind) for kind in KINDS}


def reference(path: Path, texts: list[str], prefix: str = "", **generate) -> list[str]:
    """transformers' generate, one input at a time: the new tokens' text."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    model = AutoModelForSeq2SeqLM.from_pretrained(str(path)).eval()
    tok = AutoTokenizer.from_pretrained(str(path))
    out = []
    for text in texts:
        enc = tok(prefix + text, return_tensors="pt")
        with torch.inference_mode():
            ids = model.generate(**enc, **generate)
        out.append(tok.decode(ids[0, 1:], skip_special_tokens=True))
    return out


def ours(path: Path, backend: str, texts: list[str], task: str = "text2text-generation", batch_size: int = 16,
         **options):
    pipe = build_pipeline(ModelSpec(name=str(path), task=task, backend=backend, **options))
    return pipe.predict(texts, BatchingSpec(batch_size=batch_size))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_greedy_equals_transformers_generate(seq2seq, kind, backend):
    want = reference(seq2seq[kind], INPUTS, max_new_tokens=9, do_sample=False)
    got = ours(seq2seq[kind], backend, INPUTS, max_new_tokens=9)  # mixed lengths in one right-padded batch
    assert got["generated_text"].to_pylist() == want
    finish, tokens = got["finish_reason"].to_pylist(), got["completion_tokens"].to_pylist()
    assert all((f == "length" and n == 9) or (f == "eos" and n <= 9) for f, n in zip(finish, tokens))


@pytest.mark.parametrize("backend", BACKENDS)
def test_finished_rows_leave_the_batch(seq2seq, backend, tmp_path, monkeypatch):
    """With an end token the rows write at different steps, rows that ended leave the batch between generate
    calls (every CHUNK new tokens; the encoder runs once); the rest go on with the tokens of one call."""
    texts = INPUTS * 2
    model = ending_early(seq2seq["bart"], INPUTS, tmp_path / "early")
    want = reference(model, texts, max_new_tokens=40, do_sample=False)
    sizes = generate_call_sizes(monkeypatch)
    got = ours(model, backend, texts, max_new_tokens=40)
    assert got["generated_text"].to_pylist() == want
    assert {"eos", "length"} <= set(got["finish_reason"].to_pylist())
    assert sizes[0] == len(texts) and sizes[-1] < sizes[0] and len(sizes) == 3  # 40 new tokens: 16+16+8
    held = dict(max_new_tokens=40, min_new_tokens=24)  # the end token held back over two calls, not three
    assert ours(model, backend, texts, **held)["generated_text"].to_pylist() == \
        reference(model, texts, do_sample=False, **held)


@pytest.mark.parametrize("backend", BACKENDS)
def test_beam_search_and_penalties(seq2seq, backend):
    options = dict(num_beams=3, max_new_tokens=8, repetition_penalty=1.4, min_new_tokens=3)
    want = reference(seq2seq["bart"], INPUTS, do_sample=False, **options)
    assert ours(seq2seq["bart"], backend, INPUTS, **options)["generated_text"].to_pylist() == want


@pytest.mark.parametrize("backend", ["ort", "openvino"])
def test_summarization_takes_the_models_task_parameters(seq2seq, backend):
    """T5's task_specific_params: the `summarize: ` prefix and its beams apply, the job's options over them."""
    path = seq2seq["t5"]
    want = reference(path, INPUTS, prefix="summarize: ", num_beams=2, max_new_tokens=7, do_sample=False)
    got = ours(path, backend, INPUTS, task="summarization", max_new_tokens=7)
    assert got["generated_text"].to_pylist() == want
    plain = ours(path, backend, INPUTS, task="text2text-generation", max_new_tokens=7)
    assert plain["generated_text"].to_pylist() == reference(path, INPUTS, max_new_tokens=7, do_sample=False)
    fr = ours(path, backend, INPUTS, task="translation", src_lang="en", tgt_lang="fr", max_new_tokens=7)
    assert fr["generated_text"].to_pylist() == reference(path, INPUTS, prefix="translate English to French: ",
                                                         max_new_tokens=7, do_sample=False)


def test_sampling_is_seeded_per_row(seq2seq):
    options = dict(do_sample=True, temperature=1.5, max_new_tokens=8, seed=5)
    runs = [ours(seq2seq["marian"], "ort", INPUTS * 3, batch_size=b, **options)["generated_text"].to_pylist()
            for b in (1, 4, 16)]
    assert runs[0] == runs[1] == runs[2]
    assert runs[0] != ours(seq2seq["marian"], "ort", INPUTS * 3, max_new_tokens=8)["generated_text"].to_pylist()


@pytest.mark.parametrize("task,key", [("text2text-generation", "generated_text"), ("summarization", "summary_text"),
                                      ("translation", "translation_text")])
def test_pipeline_gives_the_4_5x_output_format(seq2seq, task, key):
    import batchinfer

    path = seq2seq["bart"]
    pipe = batchinfer.pipeline(task, str(path), accelerator="ort")
    # summarization: the config's task_specific_params (prefix, beams, max_length), as 4.5x's pipeline applied
    params = {"prefix": "summarize: ", "num_beams": 2, "max_length": 12} if task == "summarization" else {}
    want = reference(path, INPUTS[:3], max_new_tokens=6, do_sample=False, **params)
    assert pipe(INPUTS[0], max_new_tokens=6) == [{key: want[0]}]  # one input: a list of one dict
    assert pipe(INPUTS[:3], max_new_tokens=6) == [{key: w} for w in want]  # a list of strings: a flat list
    # no max_new_tokens: the model's generation config (max_length 20, or the task's), as transformers 4.5x did
    assert pipe(INPUTS[1]) == [{key: reference(path, INPUTS[1:2], do_sample=False, **params)[0]}]


def test_text_generation_refuses_an_encoder_decoder_and_back(seq2seq, tmp_path):
    from batchinfer.errors import ModelError
    from tests.tiny_decoders import build_decoder

    with pytest.raises(ModelError, match="text2text-generation"):
        build_pipeline(ModelSpec(name=str(seq2seq["t5"]), task="text-generation", backend="ort"))
    gpt2 = build_decoder(tmp_path / "gpt2", "gpt2")
    with pytest.raises(ModelError, match="text-generation"):
        build_pipeline(ModelSpec(name=str(gpt2), task="summarization", backend="ort"))


def test_a_translation_job(seq2seq, tmp_path):
    from click.testing import CliRunner

    from batchinfer.cli import main

    path = seq2seq["t5"]
    pl.DataFrame({"id": list(range(12)), "text": INPUTS * 2}).write_parquet(tmp_path / "in.parquet")
    (tmp_path / "job.toml").write_text(f'''[input]
path = "in.parquet"
column = "text"

[model]
name = "{path}"
task = "translation"
backend = "openvino"
src_lang = "en"
tgt_lang = "fr"
max_new_tokens = 6

[output]
path = "out"
''')
    result = CliRunner().invoke(main, ["run", str(tmp_path / "job.toml"), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet")).sort("id")
    assert pq.read_table(str(tmp_path / "out")).num_rows == 12
    want = reference(path, INPUTS, prefix="translate English to French: ", max_new_tokens=6, do_sample=False)
    assert out["generated_text"].to_list() == want * 2
    assert out.columns == ["id", "text", "generated_text", "finish_reason", "prompt_tokens", "completion_tokens"]
