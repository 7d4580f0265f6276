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
