"""The IPEX backend. Tests marked `ipex` run in their own environment (torch 2.8 + IPEX 2.8 + transformers
< 5.24), made by scripts/test-ipex.sh; the rest run in the main suite, where IPEX is not installed."""

from __future__ import annotations

import json
import logging

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import batchinfer
from batchinfer.backends import ipex as ipex_backend
from batchinfer.cli import main
from batchinfer.errors import ModelError
from batchinfer.job import ModelSpec
from batchinfer.pipelines import build_pipeline
from tests.conftest import TEXTS
from tests.test_cli import job, make_frame


@pytest.mark.parametrize("versions, message", [
    ({"intel-extension-for-pytorch": None, "torch": (2, 13), "transformers": (5, 24)}, "not installed"),
    ({"intel-extension-for-pytorch": (2, 8), "torch": (2, 13), "transformers": (5, 23)}, "needs torch 2.8.*"),
    ({"intel-extension-for-pytorch": (2, 8), "torch": (2, 8), "transformers": (5, 24)}, "transformers 5.24"),
])
def test_version_checks_give_one_clear_error(monkeypatch, versions, message):
    monkeypatch.setattr(ipex_backend, "_version", lambda package: versions[package])
    with pytest.raises(ModelError, match=message) as info:
        ipex_backend.check_ipex()
    assert 'batchinfer[ipex]' in str(info.value) and "openvino" in str(info.value)


def test_matching_versions_pass_the_check(monkeypatch):
    versions = {"intel-extension-for-pytorch": (2, 8), "torch": (2, 8), "transformers": (5, 23)}
    monkeypatch.setattr(ipex_backend, "_version", lambda package: versions[package])
    ipex_backend.check_ipex()


def test_job_without_ipex_installed_fails_fast_with_the_install_hint(tmp_path, tiny_classifier):
    if ipex_backend._version("intel-extension-for-pytorch") is not None:
        pytest.fail("the main test environment must not have IPEX; its tests run in scripts/test-ipex.sh")
    make_frame(10).write_parquet(tmp_path / "in.parquet")
    result = CliRunner().invoke(main, ["run", str(job(tmp_path, tiny_classifier, input_path="in.parquet")),
                                       "--set", "model.backend=ipex"])
    assert result.exit_code == ModelError.exit_code
    assert "Intel Extension for PyTorch" in result.output and "batchinfer[ipex]" in result.output
    assert not (tmp_path / "out").exists()


def test_bf16_is_only_for_ipex():
    with pytest.raises(ValueError, match="openvino and ipex backends only"):
        ModelSpec(name="m", task="text-classification", backend="ort", precision="bf16")


# -- in the IPEX environment -----------------------------------------------------------------------

@pytest.mark.ipex
def test_ipex_matches_transformers(tiny_classifier):
    from transformers import pipeline

    want = pipeline("text-classification", model=str(tiny_classifier), device="cpu")(TEXTS, truncation=True)
    pipe = build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend="ipex"))
    got = pipe.predict(TEXTS)
    assert "ipex 2.8" in pipe.backend.description
    assert got["label"].to_pylist() == [w["label"] for w in want]
    np.testing.assert_allclose(got["score"].to_numpy(), [w["score"] for w in want], atol=1e-4)
    ours = batchinfer.pipeline("text-classification", model=str(tiny_classifier), accelerator="ipex")
    assert [d["label"] for d in ours(TEXTS, truncation=True)] == [w["label"] for w in want]


@pytest.mark.ipex
def test_ipex_embeddings_match_torch(tiny_encoder):
    from tests.test_parity import torch_mean_pooling

    pipe = build_pipeline(ModelSpec(name=str(tiny_encoder), task="feature-extraction", backend="ipex"))
    got = np.array(pipe.predict(TEXTS)["embedding"].to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(got, torch_mean_pooling(tiny_encoder, TEXTS, normalize=False), atol=1e-4)


@pytest.mark.ipex
def test_ipex_job_file_run_and_bf16_note(tmp_path, tiny_classifier, caplog):
    make_frame(300).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    caplog.set_level(logging.WARNING, logger="batchinfer")
    # a random tiny model's near-tied logits flip about 1% of labels in bf16: the gate at 0.99 may refuse
    result = CliRunner().invoke(main, ["run", str(path), "--set", "model.backend=ipex",
                                       "--set", "model.precision=bf16", "--set", "model.min_agreement=0.9"])
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    assert out.height == 300 and set(out["label"]) <= {"negative", "neutral", "positive"}
    if ipex_backend.cpu_has_bf16():
        assert "bf16 vs fp32 on the first 300 rows of the input" in result.output + caplog.text  # "" and null: rows too
    else:
        assert "bf16 is not available; running fp32" in result.output + caplog.text
    assert json.loads((tmp_path / "out" / "_SUCCESS").read_text())["backend"] == "ipex"


@pytest.mark.ipex
def test_ipex_image_classification_matches_transformers(tiny_vit):
    import io

    from PIL import Image
    from transformers import pipeline

    from tests.conftest import make_images

    images = [Image.open(io.BytesIO(b)).convert("RGB") for b in make_images(6)]
    want = pipeline("image-classification", model=str(tiny_vit), device="cpu")(images, top_k=1)
    got = build_pipeline(ModelSpec(name=str(tiny_vit), task="image-classification", backend="ipex")).predict(images)
    assert got["label"].to_pylist() == [w[0]["label"] for w in want]
    np.testing.assert_allclose(got["score"].to_numpy(), [w[0]["score"] for w in want], atol=1e-4)


@pytest.mark.ipex
def test_ipex_token_classification_and_zero_shot(tiny_ner, tiny_nli):
    from transformers import pipeline

    from tests.test_text_tasks import LABELS, SENTENCES, same_entities

    want = pipeline("token-classification", model=str(tiny_ner), device="cpu", aggregation_strategy="simple")(SENTENCES)
    got = build_pipeline(ModelSpec(name=str(tiny_ner), task="token-classification", backend="ipex")).predict(SENTENCES)
    for g, w in zip(got["entities"].to_pylist(), want):
        same_entities(g, w)
    sentences = [s for s in SENTENCES if s]
    want = pipeline("zero-shot-classification", model=str(tiny_nli), device="cpu")(sentences, candidate_labels=LABELS)
    got = build_pipeline(ModelSpec(name=str(tiny_nli), task="zero-shot-classification", backend="ipex",
                                   candidate_labels=LABELS)).predict(sentences)
    assert got["labels"].to_pylist() == [w["labels"] for w in want]
    np.testing.assert_allclose(np.array(got["scores"].to_pylist()), [w["scores"] for w in want], atol=1e-4)


@pytest.mark.ipex
def test_ipex_fill_mask_matches_transformers(tiny_mlm):
    from transformers import pipeline

    from tests.test_fill_mask import MASKED, TARGETS, same_row, same_rows

    reference = pipeline("fill-mask", model=str(tiny_mlm), device="cpu")
    ours = batchinfer.pipeline("fill-mask", model=str(tiny_mlm), accelerator="ipex")
    assert "ipex 2.8" in ours._base.backend.description
    for kwargs in ({}, {"top_k": 3}, {"targets": TARGETS}):
        same_rows(ours(MASKED, **kwargs), reference(MASKED, **kwargs))
        same_row(ours(MASKED[0], **kwargs), reference(MASKED[0], **kwargs))


@pytest.mark.ipex
def test_ipex_text_pair_classification_matches_transformers(tiny_cross_encoder, tiny_nli):
    from transformers import pipeline

    from tests.test_text_pairs import LONG_PAIR, PAIRS, as_dicts, assert_same

    for model in (tiny_cross_encoder, tiny_nli):
        reference = pipeline("text-classification", model=str(model), device="cpu")
        ours = batchinfer.pipeline("text-classification", model=str(model), accelerator="ipex")
        for kwargs in ({}, {"top_k": None}):
            assert_same(ours(as_dicts(PAIRS)[0], **kwargs), reference(as_dicts(PAIRS)[0], **kwargs))
            assert_same(ours(as_dicts(PAIRS), **kwargs), reference(as_dicts(PAIRS), **kwargs))
        both = as_dicts([*PAIRS, LONG_PAIR])
        assert_same(ours(both, truncation=True), reference(both, truncation=True))


@pytest.mark.ipex
def test_ipex_generation_equals_transformers_generate(tmp_path):
    from tests.test_generation import PROMPTS, ours, reference
    from tests.tiny_decoders import build_decoder

    prompts = [p for p in PROMPTS if p]
    for kind in ("gpt2", "llama"):
        path = build_decoder(tmp_path / kind, kind)
        for options in ({"max_new_tokens": 24}, {"max_new_tokens": 6, "num_beams": 3}):  # 24: two calls
            want = reference(path, prompts, do_sample=False, **options)
            got = ours(path, "ipex", prompts, **options)  # mixed lengths, left-padded in one batch
            assert got["generated_text"].to_pylist() == want
    sampled = dict(do_sample=True, temperature=1.3, max_new_tokens=20, seed=5)
    assert (ours(path, "ipex", prompts, **sampled)["generated_text"].to_pylist()
            == ours(path, "torch", prompts, **sampled)["generated_text"].to_pylist())


@pytest.mark.ipex
def test_ipex_text2text_generation_equals_transformers_generate(tmp_path):
    from tests import test_seq2seq_generation as s2s
    from tests.tiny_decoders import build_seq2seq

    for kind in ("t5", "bart"):
        path = build_seq2seq(tmp_path / kind, kind)
        for options in ({"max_new_tokens": 20}, {"max_new_tokens": 6, "num_beams": 3}):
            want = s2s.reference(path, s2s.INPUTS, do_sample=False, **options)
            assert s2s.ours(path, "ipex", s2s.INPUTS, **options)["generated_text"].to_pylist() == want


@pytest.mark.ipex
def test_ipex_question_answering_matches_transformers_4(tmp_path):
    from tests.test_question_answering import CALLS, _tiny_qa, assert_same, transformers4

    model = _tiny_qa(tmp_path / "qa", "bert")
    want = transformers4(model, CALLS, tmp_path)
    qa = batchinfer.pipeline("question-answering", model=str(model), accelerator="ipex")
    for call, expected in zip(CALLS, want):
        assert_same(qa(**call), expected)


@pytest.mark.ipex
def test_ipex_image_embeddings_and_zero_shot_match_transformers(tmp_path):
    import io

    from PIL import Image
    from transformers import pipeline

    from tests.conftest import make_images
    from tests.tiny_clip import build_clip

    images = [Image.open(io.BytesIO(b)).convert("RGB") for b in make_images(6, seed=5)]
    clip = build_clip(tmp_path / "clip")
    labels = ["a cat", "a dog", "fish"]
    want = pipeline("zero-shot-image-classification", model=str(clip), device="cpu")(images, candidate_labels=labels)
    got = batchinfer.pipeline("zero-shot-image-classification", model=str(clip), accelerator="ipex")(
        images, candidate_labels=labels)
    assert [[d["label"] for d in row] for row in got] == [[d["label"] for d in row] for row in want]
    np.testing.assert_allclose([[d["score"] for d in row] for row in got],
                               [[d["score"] for d in row] for row in want], atol=1e-4)
    torch_emb, ipex_emb = (np.asarray(build_pipeline(ModelSpec(
        name=str(clip), task="image-feature-extraction", backend=backend)).predict(images)["embedding"].to_pylist())
        for backend in ("torch", "ipex"))
    np.testing.assert_allclose(ipex_emb, torch_emb, atol=1e-4)


@pytest.mark.ipex
def test_ipex_captions_equal_generate(tmp_path):
    import io

    from PIL import Image

    from tests.conftest import make_images
    from tests.test_image_text_to_text import build_captioner, ours, reference

    images = [Image.open(io.BytesIO(b)).convert("RGB") for b in make_images(5, seed=8)]
    model = build_captioner(tmp_path / "captioner")
    for options in (dict(max_new_tokens=20), dict(num_beams=3, max_new_tokens=8)):
        want = reference(model, images, do_sample=False, **options)
        assert ours(model, "ipex", images, **options)["generated_text"].to_pylist() == want


@pytest.mark.ipex
def test_ipex_vision_language_model_equals_generate(tmp_path):
    import io

    from PIL import Image

    from tests.conftest import make_images
    from tests.test_image_text_to_text import build_llava, llava_reference, ours

    images = [Image.open(io.BytesIO(b)).convert("RGB") for b in make_images(4, seed=8)]
    model = build_llava(tmp_path / "llava")
    want = llava_reference(model, images, "what is it?", max_new_tokens=20, do_sample=False)
    assert ours(model, "ipex", images, max_new_tokens=20, prompt="what is it?")["generated_text"].to_pylist() == want


@pytest.mark.ipex
def test_ipex_audio_tasks_equal_transformers(tmp_path):
    """Audio classification (wav2vec2, AST), CTC speech recognition (chunked, word timestamps) and Whisper
    (beams, greedy with segments, chunked) on IPEX: what transformers' pipelines give."""
    from transformers import pipeline

    from tests.test_speech_recognition import long_audio as ctc_audio
    from tests.test_whisper import CLIPS as WHISPER_CLIPS
    from tests.test_whisper import GREEDY, WINDOW
    from tests.test_whisper import long_audio as whisper_audio
    from tests.test_whisper import reference as whisper_reference
    from tests.tiny_audio import build_ast, build_wav2vec2_classifier, build_wav2vec2_ctc, build_whisper, clips

    values = clips(6, seed=4)
    for model in (build_wav2vec2_classifier(tmp_path / "w2v"), build_ast(tmp_path / "ast")):
        want = pipeline("audio-classification", model=str(model), device="cpu")([v.copy() for v in values])
        got = batchinfer.pipeline("audio-classification", model=str(model), accelerator="ipex")(values)
        assert [[d["label"] for d in row] for row in got] == [[d["label"] for d in row] for row in want]
        np.testing.assert_allclose([[d["score"] for d in row] for row in got],
                                   [[d["score"] for d in row] for row in want], atol=1e-4)
    ctc = build_wav2vec2_ctc(tmp_path / "ctc")
    reference = pipeline("automatic-speech-recognition", model=str(ctc), device="cpu")
    asr = batchinfer.pipeline("automatic-speech-recognition", model=str(ctc), accelerator="ipex")
    long = [ctc_audio(9.9, seed=2)]
    for call, inputs in ((dict(), values), (dict(chunk_length_s=2.0, return_timestamps="word"), long)):
        assert asr(inputs, **call) == [reference(v.copy(), **call) for v in inputs], call
    whisper = build_whisper(tmp_path / "whisper")
    asr = batchinfer.pipeline("automatic-speech-recognition", model=str(whisper), accelerator="ipex")
    for call, inputs in ((dict(), WHISPER_CLIPS), (dict(return_timestamps=True, generate_kwargs=GREEDY), WHISPER_CLIPS),
                         (dict(chunk_length_s=WINDOW, generate_kwargs=GREEDY), [whisper_audio(9.3)])):
        assert asr(inputs, batch_size=4, **call) == whisper_reference(whisper, inputs, **call), call
