"""image-feature-extraction (ViT, DINOv2, ConvNeXt, CLIP's image tower), CLIP text embeddings and
zero-shot-image-classification on tiny random models: parity with transformers on every backend, and the job
runner end to end (embeddings as fixed-size lists, read back with polars and pyarrow; bad images dead-lettered)."""

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
from tests.conftest import make_images
from tests.tiny_clip import build_clip

BACKENDS = ["torch", "ort", "openvino"]
IMAGES = make_images(10, seed=5)
LABELS = ["a cat", "a dog", "a red bird", "fish"]
CAPTIONS = ["a photo of a cat", "two dogs on a beach", "", "Ünïcödé 東京 😀", "a red bird " * 6]


@pytest.fixture(scope="module")
def pil_images():
    return [Image.open(io.BytesIO(b)).convert("RGB") for b in IMAGES]


def _vision(path: Path, kind: str) -> Path:
    import torch
    import transformers

    torch.manual_seed(11)
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, image_size=32,
                 patch_size=8)
    if kind == "vit":  # with its pooler
        transformers.ViTModel(transformers.ViTConfig(**small)).eval().save_pretrained(str(path))
        processor = transformers.ViTImageProcessor(size={"height": 32, "width": 32})
    elif kind == "vit-classifier":  # a classification checkpoint: no pooler weights
        config = transformers.ViTConfig(**small, num_labels=3)
        transformers.ViTForImageClassification(config).eval().save_pretrained(str(path))
        processor = transformers.ViTImageProcessor(size={"height": 32, "width": 32})
    elif kind == "dinov2":
        config = transformers.Dinov2Config(**{**small, "patch_size": 8}, mlp_ratio=2)
        transformers.Dinov2Model(config).eval().save_pretrained(str(path))
        processor = transformers.BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    else:
        config = transformers.ConvNextConfig(num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], image_size=32)
        transformers.ConvNextModel(config).eval().save_pretrained(str(path))
        processor = transformers.ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)
    processor.save_pretrained(str(path))
    return path


@pytest.fixture(scope="module")
def vision(tmp_path_factory) -> dict[str, Path]:
    return {kind: _vision(tmp_path_factory.mktemp(kind), kind) for kind in ("vit", "vit-classifier", "dinov2",
                                                                           "convnext")}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return build_clip(tmp_path_factory.mktemp("tiny-clip") / "model")


def embeddings(path: Path, task: str, backend: str, values, **options) -> np.ndarray:
    pipe = build_pipeline(ModelSpec(name=str(path), task=task, backend=backend, **options))
    column = pipe.predict(values, BatchingSpec(batch_size=4))["embedding"]
    assert pa.types.is_fixed_size_list(column.type)
    return np.asarray(column.to_pylist(), dtype=np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["vit", "vit-classifier", "dinov2", "convnext"])
def test_image_embeddings_equal_transformers(vision, pil_images, kind, backend):
    from transformers import pipeline

    path = vision[kind]
    reference = pipeline("image-feature-extraction", model=str(path), device="cpu")
    hidden = np.array([r[0] for r in reference(pil_images)], dtype=np.float32)  # each image: [its outputs]
    if kind == "vit-classifier":  # no trained pooler: auto pools the CLS token
        want = hidden[:, 0]
    else:
        want = np.array([r[0] for r in reference(pil_images, pool=True)], dtype=np.float32)
        want = want.reshape(len(want), -1)
    got = embeddings(path, "image-feature-extraction", backend, pil_images)
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert np.ptp(got, axis=0).max() > 1e-3  # the images differ
    normal = embeddings(path, "image-feature-extraction", backend, pil_images, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(normal, axis=1), 1.0, atol=1e-5)
    if hidden.ndim == 3:
        np.testing.assert_allclose(embeddings(path, "image-feature-extraction", backend, pil_images, pooling="cls"),
                                   hidden[:, 0], atol=1e-4)
        np.testing.assert_allclose(embeddings(path, "image-feature-extraction", backend, pil_images, pooling="mean"),
                                   hidden.mean(1), atol=1e-4)
        ours = batchinfer.pipeline("image-feature-extraction", model=str(path), accelerator=backend)
        np.testing.assert_allclose(np.array(ours(pil_images[:3])), np.array(reference(pil_images[:3])), atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_embeds_images_and_texts_into_one_space(clip, pil_images, backend):
    import torch
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    model = CLIPModel.from_pretrained(str(clip)).eval()
    tok = AutoTokenizer.from_pretrained(str(clip))
    with torch.inference_mode():
        pixels = CLIPImageProcessor.from_pretrained(str(clip))(images=pil_images, return_tensors="pt")
        want_images = _tensor(model.get_image_features(**pixels))
        want_texts = np.stack([_tensor(model.get_text_features(**tok(c, return_tensors="pt")))[0] for c in CAPTIONS])
    got_images = embeddings(clip, "image-feature-extraction", backend, pil_images)
    got_texts = embeddings(clip, "feature-extraction", backend, CAPTIONS)
    assert got_images.shape == (len(IMAGES), 16) and got_texts.shape == (len(CAPTIONS), 16)  # the projection
    np.testing.assert_allclose(got_images, want_images, atol=1e-4)
    np.testing.assert_allclose(got_texts, want_texts, atol=1e-4)


def _tensor(out) -> np.ndarray:
    """get_*_features gives a tensor (or, in some transformers versions, an output with the pooled one)."""
    return (out if hasattr(out, "numpy") else out.pooler_output).numpy()


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_shot_image_classification_equals_transformers(clip, pil_images, backend):
    from transformers import pipeline

    reference = pipeline("zero-shot-image-classification", model=str(clip), device="cpu")
    ours = batchinfer.pipeline("zero-shot-image-classification", model=str(clip), accelerator=backend)
    for kwargs in ({"candidate_labels": LABELS}, {"candidate_labels": LABELS[:2], "hypothesis_template": "{}!"}):
        want, got = reference(pil_images, **kwargs), ours(pil_images, **kwargs)
        assert [[d["label"] for d in row] for row in got] == [[d["label"] for d in row] for row in want]
        np.testing.assert_allclose([[d["score"] for d in row] for row in got],
                                   [[d["score"] for d in row] for row in want], atol=1e-4)
    rankings = {tuple(d["label"] for d in row) for row in reference(pil_images, candidate_labels=LABELS)}
    assert len(rankings) > 1  # the images rank the labels differently
    single = ours(pil_images[0], candidate_labels=LABELS)
    assert [d["label"] for d in single] == [d["label"] for d in reference(pil_images[0], candidate_labels=LABELS)]


def _job(tmp_path: Path, name: str, model: Path, column: str, task: str, model_lines: str = "",
         input_lines: str = "") -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(f"""
[input]
path = "in.parquet"
column = "{column}"
batch_rows = 4
{input_lines}
[model]
name = {json.dumps(str(model))}
task = "{task}"
{model_lines}
[output]
path = "{name}"
keep_columns = ["id"]
""")
    return str(path)


def test_catalogue_jobs_embed_images_and_captions_and_classify(tmp_path, clip, pil_images):
    """One job embeds a catalogue's images, another its captions (into the same space), a third classifies
    the images against labels; an undecodable image is dead-lettered."""
    images = [*IMAGES[:5], b"not an image"]
    captions = [*CAPTIONS, "last"]
    pq.write_table(pa.table({"id": list(range(6)), "image": pa.array(images, pa.binary()), "caption": captions}),
                   tmp_path / "in.parquet")
    dead = 'on_error = "dead-letter"'
    run = CliRunner().invoke
    result = run(main, ["run", _job(tmp_path, "img", clip, "image", "image-feature-extraction", "normalize = true",
                                    dead)])
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    result = run(main, ["run", _job(tmp_path, "txt", clip, "caption", "feature-extraction", "normalize = true")])
    assert result.exit_code == 0, result.output
    labels = f"candidate_labels = {json.dumps(LABELS)}"
    result = run(main, ["run", _job(tmp_path, "zs", clip, "image", "zero-shot-image-classification", labels, dead)])
    assert result.exit_code == EXIT_ROWS_FAILED, result.output

    img = pl.read_parquet(str(tmp_path / "img" / "*.parquet"))
    table = pq.read_table(str(tmp_path / "img"))
    assert img["id"].to_list() == [0, 1, 2, 3, 4] and table.column_names == ["id", "embedding"]
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 16)
    assert img.schema["embedding"] == pl.Array(pl.Float32, 16)
    want = embeddings(clip, "image-feature-extraction", "ort", pil_images[:5], normalize=True)
    np.testing.assert_allclose(np.asarray(img["embedding"].to_list()), want, atol=1e-5)
    api = batchinfer.predict(pl.DataFrame({"id": range(5), "image": IMAGES[:5]}), "image",
                             task="image-feature-extraction", model=str(clip), normalize=True)  # the polars API
    assert api.schema["embedding"] == pl.Array(pl.Float32, 16)
    np.testing.assert_allclose(np.asarray(api["embedding"].to_list()), np.asarray(img["embedding"].to_list()),
                               atol=1e-6)
    txt = pl.read_parquet(str(tmp_path / "txt" / "*.parquet"))
    assert pq.read_table(str(tmp_path / "txt")).schema.field("embedding").type == pa.list_(pa.float32(), 16)
    similarity = np.asarray(img["embedding"].to_list()) @ np.asarray(txt["embedding"].to_list()).T
    assert similarity.shape == (5, 6) and np.abs(similarity).max() <= 1 + 1e-5  # cosines: one space

    zs = pl.read_parquet(str(tmp_path / "zs" / "*.parquet"))
    assert pq.read_table(str(tmp_path / "zs")).column_names == ["id", "labels", "scores"]
    from transformers import pipeline

    reference = pipeline("zero-shot-image-classification", model=str(clip), device="cpu")(
        pil_images[:5], candidate_labels=LABELS)
    assert zs["labels"].to_list() == [[d["label"] for d in row] for row in reference]
    np.testing.assert_allclose(np.asarray(zs["scores"].to_list()), [[d["score"] for d in row] for row in reference],
                               atol=1e-4)
    zs_api = batchinfer.predict(pl.DataFrame({"image": IMAGES[:5]}), "image", task="zero-shot-image-classification",
                                model=str(clip), candidate_labels=LABELS)
    assert zs_api["labels"].to_list() == zs["labels"].to_list()
    for name in ("img", "zs"):
        bad = pl.read_parquet(str(tmp_path / name / "_dead_letter" / "*.parquet"))
        assert bad["id"].to_list() == [5] and bad["_error"][0].startswith("image cannot be decoded")


def test_zero_shot_image_needs_labels_and_an_image_text_model(tmp_path, vision):
    from batchinfer.errors import ModelError

    with pytest.raises(ValueError, match="candidate_labels"):
        build_pipeline(ModelSpec(name=str(vision["vit"]), task="zero-shot-image-classification"))
    with pytest.raises(ModelError, match="image and a text tower"):
        build_pipeline(ModelSpec(name=str(vision["vit"]), task="zero-shot-image-classification",
                                 candidate_labels=["a", "b"]))
