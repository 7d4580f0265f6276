"""image-text-to-text on a tiny random VisionEncoderDecoder (a ViT encoder, a GPT-2 decoder with cross-attention
and a projection between them) and a tiny LLaVA (a CLIP image tower, a projector, a Llama decoder, a prompt):
token-identical to transformers' `generate` on every backend (greedy, beams, sampling seeded per row, rows
that end early), and jobs end to end."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

import batchinfer
from batchinfer.cli import main
from batchinfer.errors import EXIT_ROWS_FAILED
from batchinfer.job import BatchingSpec, ModelSpec
from batchinfer.pipelines import build_pipeline
from tests.conftest import make_images, minilm_path

BACKENDS = ["torch", "ort", "openvino"]
IMAGES = make_images(7, seed=8)


def build_captioner(path: Path, seed: int = 12) -> Path:
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(minilm_path()))
    encoder = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                                     image_size=32, patch_size=8)
    decoder = transformers.GPT2Config(vocab_size=len(tok), n_embd=48, n_layer=2, n_head=2, n_positions=64,
                                      add_cross_attention=True, is_decoder=True, bos_token_id=tok.cls_token_id,
                                      eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id,
                                      initializer_range=0.3)
    config = transformers.VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id = tok.cls_token_id, tok.pad_token_id
    config.eos_token_id = tok.sep_token_id
    torch.manual_seed(seed)
    model = transformers.VisionEncoderDecoderModel(config).eval()
    model.generation_config = transformers.GenerationConfig(decoder_start_token_id=tok.cls_token_id,
                                                            pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def captioner(tmp_path_factory) -> Path:
    return build_captioner(tmp_path_factory.mktemp("tiny-captioner") / "model")


@pytest.fixture(scope="module")
def pil_images():
    return [Image.open(io.BytesIO(b)).convert("RGB") for b in IMAGES]


def reference(path: Path, images, **generate) -> list[str]:
    """transformers' generate, one image at a time: the caption's new tokens, decoded."""
    import torch
    from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

    model = VisionEncoderDecoderModel.from_pretrained(str(path)).eval()
    processor, tok = AutoImageProcessor.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path))
    texts = []
    for image in images:
        pixels = processor(images=[image], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            out = model.generate(pixel_values=pixels, **generate)
        texts.append(tok.decode(out[0, 1:], skip_special_tokens=True))
    return texts


def ours(path: Path, backend: str, images, batch_size: int = 16, **options):
    pipe = build_pipeline(ModelSpec(name=str(path), task="image-text-to-text", backend=backend, **options))
    return pipe.predict(images, BatchingSpec(batch_size=batch_size))


@pytest.mark.parametrize("backend", BACKENDS)
def test_captions_equal_transformers_generate(captioner, pil_images, backend):
    want = reference(captioner, pil_images, max_new_tokens=20, do_sample=False)
    got = ours(captioner, backend, pil_images, max_new_tokens=20)  # 20 > 16: two generate calls, rows leave
    assert got["generated_text"].to_pylist() == want
    assert len(set(want)) > 1  # the images get different captions
    assert set(got["finish_reason"].to_pylist()) <= {"eos", "length"}
    assert got["prompt_tokens"].to_pylist() == [0] * len(IMAGES)
    beams = dict(num_beams=3, max_new_tokens=8, repetition_penalty=1.2)
    assert ours(captioner, backend, pil_images, **beams)["generated_text"].to_pylist() == \
        reference(captioner, pil_images, do_sample=False, **beams)
    sampled = dict(do_sample=True, temperature=1.2, max_new_tokens=20, seed=3)  # per-row streams
    one = ours(captioner, backend, pil_images, batch_size=1, **sampled)["generated_text"].to_pylist()
    assert ours(captioner, backend, pil_images, batch_size=4, **sampled)["generated_text"].to_pylist() == one


def test_the_pipeline_call_and_its_alias(captioner, pil_images):
    want = reference(captioner, pil_images[:3], max_new_tokens=6, do_sample=False)
    for task in ("image-text-to-text", "image-to-text"):
        captions = batchinfer.pipeline(task, model=str(captioner), accelerator="ort")
        assert captions(pil_images[:3], max_new_tokens=6, do_sample=False) == [[{"generated_text": w}] for w in want]
        assert captions(pil_images[0], max_new_tokens=6, do_sample=False) == [{"generated_text": want[0]}]


def test_a_captioning_job(tmp_path, captioner, pil_images):
    images = [*IMAGES, b"not an image"]
    pq.write_table(pa.table({"id": list(range(len(images))), "image": pa.array(images, pa.binary())}),
                   tmp_path / "in.parquet")
    job = tmp_path / "captions.toml"
    job.write_text(f"""
[input]
path = "in.parquet"
column = "image"
on_error = "dead-letter"

[model]
name = {json.dumps(str(captioner))}
task = "image-to-text"
backend = "openvino"
max_new_tokens = 12

[output]
path = "out"
keep_columns = ["id"]
""")
    result = CliRunner().invoke(main, ["run", str(job)])
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    table = pq.read_table(str(tmp_path / "out"))
    assert table.column_names == out.columns == ["id", "generated_text", "finish_reason", "prompt_tokens",
                                                 "completion_tokens"]
    assert out["id"].to_list() == list(range(len(IMAGES)))
    assert out["generated_text"].to_list() == reference(captioner, pil_images, max_new_tokens=12, do_sample=False)
    assert table.column("generated_text").to_pylist() == out["generated_text"].to_list()
    assert np.all(out["completion_tokens"].to_numpy() <= 12)
    dead = pl.read_parquet(str(tmp_path / "out" / "_dead_letter" / "*.parquet"))
    assert dead["id"].to_list() == [len(IMAGES)] and dead["_error"][0].startswith("image cannot be decoded")


def test_a_model_without_an_image_encoder_is_refused(tiny_vit):
    from batchinfer.errors import ModelError

    with pytest.raises(ModelError, match="VisionEncoderDecoderModel"):
        build_pipeline(ModelSpec(name=str(tiny_vit), task="image-text-to-text"))


def build_llava(path: Path, seed: int = 0) -> Path:
    """A tiny LLaVA: CLIP vision tower (32 pixels, 16 patches), projector, Llama decoder, the MiniLM tokenizer
    with an <image> token, and a processor with a chat template."""
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(minilm_path()), model_input_names=["input_ids", "attention_mask"])
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    vision = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                                           image_size=32, patch_size=8)
    text = transformers.LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128,
                                    bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                                    pad_token_id=tok.pad_token_id)
    config = transformers.LlavaConfig(vision_config=vision, text_config=text, image_token_id=tok.convert_tokens_to_ids("<image>"),
                                      vision_feature_layer=-1, vision_feature_select_strategy="default",
                                      image_seq_length=16)
    torch.manual_seed(seed)
    transformers.LlavaForConditionalGeneration(config).eval().save_pretrained(str(path))
    template = ("{% for m in messages %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}"
                "{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}{% if add_generation_prompt %} answer:{% endif %}")
    image_processor = transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    transformers.LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=8,
                                vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                image_token="<image>", chat_template=template).save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def llava(tmp_path_factory) -> Path:
    return build_llava(tmp_path_factory.mktemp("tiny-llava") / "model")


def llava_reference(path: Path, images, prompt: str, **generate) -> list[str]:
    """transformers' generate on the LLaVA model, one image at a time, the prompt in its chat template."""
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(str(path)).eval()
    processor = AutoProcessor.from_pretrained(str(path))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    texts = []
    for image in images:
        enc = processor(images=[image], text=[text], return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**enc, **generate)
        texts.append(processor.tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
    return texts


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_vision_language_model_equals_generate(llava, pil_images, backend):
    want = llava_reference(llava, pil_images, "what is it?", max_new_tokens=20, do_sample=False)
    got = ours(llava, backend, pil_images, max_new_tokens=20, prompt="what is it?")
    assert got["generated_text"].to_pylist() == want
    assert len(set(want)) > 1
    assert got["prompt_tokens"].to_pylist()[0] > 16  # the image's 16 tokens and the prompt's
    beams = dict(num_beams=3, max_new_tokens=8, repetition_penalty=1.2)
    assert ours(llava, backend, pil_images, prompt="what is it?", **beams)["generated_text"].to_pylist() == \
        llava_reference(llava, pil_images, "what is it?", do_sample=False, **beams)
    sampled = dict(do_sample=True, temperature=1.2, max_new_tokens=20, seed=3, prompt="what is it?")
    one = ours(llava, backend, pil_images, batch_size=1, **sampled)["generated_text"].to_pylist()
    assert ours(llava, backend, pil_images, batch_size=4, **sampled)["generated_text"].to_pylist() == one


def test_a_vision_language_model_matches_the_transformers_pipeline(llava, pil_images):
    from transformers import pipeline

    reference = pipeline("image-text-to-text", model=str(llava), device="cpu")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what is it?"}]}]
    text = reference.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    want = [r[0]["generated_text"] if isinstance(r, list) else r["generated_text"] for r in reference(
        images=pil_images[:3], text=[text] * 3, max_new_tokens=10, do_sample=False, return_full_text=False)]
    got = ours(llava, "openvino", pil_images[:3], max_new_tokens=10, prompt="what is it?")
    # the pipeline cuts the prompt's text off the whole decoded text, keeping the space WordPiece puts between
    # them; batchinfer decodes the new tokens alone (as its text-generation does, and transformers 5's)
    assert [" " + t for t in got["generated_text"].to_pylist()] == want


def test_a_prompt_over_every_image_through_the_polars_api(llava, pil_images):
    frame = pl.DataFrame({"id": range(len(IMAGES)), "image": IMAGES})
    out = batchinfer.predict(frame, "image", task="image-text-to-text", model=str(llava), prompt="what is it?",
                             max_new_tokens=8)
    assert out["generated_text"].to_list() == llava_reference(llava, pil_images, "what is it?", max_new_tokens=8,
                                                              do_sample=False)
    assert out.columns == ["id", "image", "generated_text", "finish_reason", "prompt_tokens", "completion_tokens"]
