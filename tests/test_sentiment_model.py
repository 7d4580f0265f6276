"""The sample sentiment model: assembled offline, sensible on obvious cases, same answers as transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from batchinfer.cli import main
from batchinfer.errors import ModelError
from batchinfer.job import ModelSpec
from batchinfer.pipelines import build_pipeline

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sentiment():
    return build_pipeline(ModelSpec(name="sample:sentiment-minilm", task="text-classification", backend="ort"))


def test_obvious_cases(sentiment):
    got = sentiment.predict(["I loved every minute of it", "a dull, lifeless waste of time",
                             "An absolute delight from start to finish.", "Broke after two days. Avoid."])
    assert got["label"].to_pylist() == ["POSITIVE", "NEGATIVE", "POSITIVE", "NEGATIVE"]
    assert min(got["score"].to_pylist()) > 0.8


def test_agrees_with_the_transformers_pipeline(sentiment):
    from transformers import pipeline

    texts = pl.read_parquet(ROOT / "sample_data" / "reviews.parquet")["text"].fill_null("").to_list()[:120]
    reference = pipeline("text-classification", model=str(sentiment.ref.path), device="cpu")
    want = reference(texts, truncation=True, batch_size=16)
    got = sentiment.predict(texts)
    assert got["label"].to_pylist() == [w["label"] for w in want]
    np.testing.assert_allclose(got["score"].to_numpy(), [w["score"] for w in want], atol=1e-4)


def test_sentiment_job_on_the_sample_reviews(tmp_path):
    result = CliRunner().invoke(main, ["run", str(ROOT / "jobs" / "sentiment.toml"),
                                       "--set", f"output.path={tmp_path / 'out'}"])
    assert result.exit_code == 0, result.output
    out = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    assert out.columns == ["review_id", "product", "text", "expected", "label", "score"]
    clear = out.filter(pl.col("expected").is_in(["positive", "negative"]))
    accuracy = (clear["label"].str.to_lowercase() == clear["expected"]).mean()
    # 0.80 measured: the model learnt English movie-review phrases (SST-2: 87% on its dev set); our
    # reviews are mostly products and hotels, in five languages, and often praise only by implication
    assert accuracy >= 0.75, f"sample reviews: {accuracy:.3f}"


def test_a_hub_model_that_is_not_available_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    job = (ROOT / "jobs" / "sentiment.toml").read_text().replace(
        "sample:sentiment-minilm", "distilbert/distilbert-base-uncased-finetuned-sst-2-english")
    (tmp_path / "job.toml").write_text(job.replace('"../sample_data', json.dumps(str(ROOT / "sample_data"))[:-1]))
    result = CliRunner().invoke(main, ["run", str(tmp_path / "job.toml"), "--set", f"output.path={tmp_path / 'o'}"])
    assert result.exit_code == ModelError.exit_code
    assert "not a local folder" in result.output and "set model.name to its local folder" in result.output
    assert not (tmp_path / "o").exists()
