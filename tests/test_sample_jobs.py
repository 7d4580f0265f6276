"""The sample jobs in jobs/ run as shipped (only the output folder is redirected)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from batchinfer.cli import main

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_embed_job(tmp_path):
    result = CliRunner().invoke(main, ["run", str(ROOT / "jobs" / "embed.toml"),
                                       "--set", f"output.path={tmp_path / 'embed'}"])
    assert result.exit_code == 0, result.output
    reviews = pl.read_parquet(ROOT / "sample_data" / "reviews.parquet")
    out = pl.read_parquet(str(tmp_path / "embed" / "*.parquet"))
    assert out["review_id"].to_list() == reviews["review_id"].to_list()
    emb = out["embedding"].to_numpy()
    assert emb.shape == (reviews.height, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_digits_job_on_images_as_structs_and_as_paths(tmp_path):
    job = str(ROOT / "jobs" / "digits.toml")
    result = CliRunner().invoke(main, ["run", job, "--set", f"output.path={tmp_path / 'structs'}"])
    assert result.exit_code == 0, result.output
    structs = pl.read_parquet(str(tmp_path / "structs" / "*.parquet"))
    assert structs.height == 60
    accuracy = (structs["predicted"] == structs["label"].cast(pl.String)).mean()
    assert accuracy >= 0.95, accuracy  # 60/60 when measured
    result = CliRunner().invoke(main, ["run", job, "--set", f"output.path={tmp_path / 'paths'}",
                                       "--set", "input.column=file"])
    assert result.exit_code == 0, result.output
    paths = pl.read_parquet(str(tmp_path / "paths" / "*.parquet"))
    assert paths["predicted"].to_list() == structs["predicted"].to_list()


def test_digits_model_agrees_with_transformers():
    import io

    from PIL import Image
    from transformers import pipeline

    from batchinfer.job import ModelSpec
    from batchinfer.pipelines import build_pipeline

    frame = pl.read_parquet(ROOT / "sample_data" / "digits" / "digits.parquet")
    images = [Image.open(io.BytesIO(v["bytes"])).convert("RGB") for v in frame["image"].to_list()[:20]]
    ours = build_pipeline(ModelSpec(name="sample:digits", task="image-classification"))
    want = pipeline("image-classification", model=str(ours.ref.path), device="cpu")(images, top_k=1)
    got = ours.predict(images)
    assert got["label"].to_pylist() == [w[0]["label"] for w in want]
    np.testing.assert_allclose(got["score"].to_numpy(), [w[0]["score"] for w in want], atol=1e-4)
