"""Image columns: bytes, {bytes, path} structs and paths; image-classification on every backend, with parity
against transformers' pipeline; undecodable and missing images follow on_error."""

from __future__ import annotations

import io
import json

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

import batchinfer
from batchinfer.cli import main
from batchinfer.errors import EXIT_ROWS_FAILED, InputError, RowErrors
from batchinfer.job import BatchingSpec, ModelSpec
from batchinfer.pipelines import build_pipeline
from tests.conftest import make_images

IMAGES = make_images(12)


@pytest.fixture(scope="module")
def pil_images():
    return [Image.open(io.BytesIO(b)).convert("RGB") for b in IMAGES]


@pytest.mark.parametrize("model_fixture", ["tiny_vit", "tiny_convnext"])
@pytest.mark.parametrize("backend", ["ort", "openvino", "torch"])
def test_image_classification_matches_transformers(request, model_fixture, backend, pil_images):
    from transformers import pipeline

    model = request.getfixturevalue(model_fixture)
    reference = pipeline("image-classification", model=str(model), device="cpu")
    want = reference(pil_images, top_k=1)
    pipe = build_pipeline(ModelSpec(name=str(model), task="image-classification", backend=backend))
    got = pipe.predict(pil_images, BatchingSpec(batch_size=5))
    assert got["label"].to_pylist() == [w[0]["label"] for w in want]
    np.testing.assert_allclose(got["score"].to_numpy(), [w[0]["score"] for w in want], atol=1e-4)
    assert len({w[0]["label"] for w in want}) > 1

    ours = batchinfer.pipeline("image-classification", model=str(model), accelerator=backend)
    for kwargs in ({}, {"top_k": 2}):
        mine, theirs = ours(pil_images[:3], **kwargs), reference(pil_images[:3], **kwargs)
        assert [[d["label"] for d in row] for row in mine] == [[d["label"] for d in row] for row in theirs]
        np.testing.assert_allclose([[d["score"] for d in row] for row in mine],
                                   [[d["score"] for d in row] for row in theirs], atol=1e-4)
    single = ours(pil_images[0])
    assert [d["label"] for d in single] == [d["label"] for d in reference(pil_images[0])]


def image_job(tmp_path, model, input_path, **input_options) -> str:
    extra = "\n".join(f"{k} = {json.dumps(v)}" for k, v in input_options.items())
    path = tmp_path / "job.toml"
    path.write_text(f"""
[input]
path = "{input_path}"
column = "image"
batch_rows = 5
{extra}
[model]
name = {json.dumps(str(model))}
task = "image-classification"
[output]
path = "out"
keep_columns = ["id"]
""")
    return str(path)


@pytest.mark.parametrize("layout", ["bytes", "struct", "relative paths", "csv of paths"])
def test_image_columns_in_every_layout(tmp_path, tiny_vit, pil_images, layout):
    ids = list(range(len(IMAGES)))
    if layout == "bytes":
        pq.write_table(pa.table({"id": ids, "image": pa.array(IMAGES, pa.binary())}), tmp_path / "in.parquet")
    elif layout == "struct":  # the Hugging Face datasets layout; half the rows carry a path instead of bytes
        (tmp_path / "img").mkdir()
        rows = []
        for i, data in enumerate(IMAGES):
            if i % 2:
                (tmp_path / "img" / f"{i}.bin").write_bytes(data)
                rows.append({"bytes": None, "path": f"img/{i}.bin"})
            else:
                rows.append({"bytes": data, "path": None})
        pq.write_table(pa.table({"id": ids, "image": rows}), tmp_path / "in.parquet")
    else:
        (tmp_path / "img").mkdir()
        for i, data in enumerate(IMAGES):
            (tmp_path / "img" / f"{i}.img").write_bytes(data)
        frame = pl.DataFrame({"id": ids, "image": [f"img/{i}.img" for i in ids]})
        frame.write_csv(tmp_path / "in.csv") if layout == "csv of paths" else frame.write_parquet(
            tmp_path / "in.parquet")
    name = "in.csv" if layout == "csv of paths" else "in.parquet"
    result = CliRunner().invoke(main, ["run", image_job(tmp_path, tiny_vit, name)])
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    want = build_pipeline(ModelSpec(name=str(tiny_vit), task="image-classification")).predict(pil_images)
    assert out["id"].to_list() == ids
    assert out["label"].to_list() == want["label"].to_pylist()
    np.testing.assert_allclose(out["score"].to_numpy(), want["score"].to_numpy(), atol=1e-6)


def test_bad_and_missing_images_follow_on_error(tmp_path, tiny_convnext):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "ok.png").write_bytes(IMAGES[1])
    rows = [{"bytes": IMAGES[0], "path": None}, {"bytes": b"not an image", "path": None},
            {"bytes": None, "path": "img/missing.png"}, {"bytes": None, "path": "img/ok.png"}, None]
    pq.write_table(pa.table({"id": [0, 1, 2, 3, 4], "image": rows}), tmp_path / "in.parquet")
    result = CliRunner().invoke(main, ["run", image_job(tmp_path, tiny_convnext, "in.parquet")])
    assert result.exit_code == RowErrors.exit_code
    assert "in.parquet, row 1: image cannot be decoded" in result.output
    result = CliRunner().invoke(main, ["run", image_job(tmp_path, tiny_convnext, "in.parquet", on_error="dead-letter"),
                                       "--set", "output.mode=overwrite"])
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    assert pl.read_parquet(str(tmp_path / "out" / "*.parquet"))["id"].to_list() == [0, 3]
    dead = pl.read_parquet(str(tmp_path / "out" / "_dead_letter" / "*.parquet")).sort("_source_row")
    assert dead["id"].to_list() == [1, 2, 4]
    assert dead["_error"][0].startswith("image cannot be decoded")
    assert dead["_error"][1] == "image file not found: img/missing.png"
    assert dead["_error"][2] == "image is null"


def test_a_text_column_is_not_an_image_column(tmp_path, tiny_vit):
    pl.DataFrame({"id": [1], "image": [1.5]}).write_parquet(tmp_path / "in.parquet")
    result = CliRunner().invoke(main, ["run", image_job(tmp_path, tiny_vit, "in.parquet")])
    assert result.exit_code == InputError.exit_code and "not image" in result.output


def test_image_urls_through_fsspec(tmp_path, tiny_vit, pil_images):
    (tmp_path / "elsewhere").mkdir()
    for i, data in enumerate(IMAGES[:4]):
        (tmp_path / "elsewhere" / f"{i}.png").write_bytes(data)
    urls = [f"file://{tmp_path / 'elsewhere' / f'{i}.png'}" for i in range(4)]
    pl.DataFrame({"id": range(4), "image": urls}).write_parquet(tmp_path / "in.parquet")
    result = CliRunner().invoke(main, ["run", image_job(tmp_path, tiny_vit, "in.parquet")])
    assert result.exit_code == 0, result.output
    want = build_pipeline(ModelSpec(name=str(tiny_vit), task="image-classification")).predict(pil_images[:4])
    assert pl.read_parquet(str(tmp_path / "out" / "*.parquet"))["label"].to_list() == want["label"].to_pylist()
