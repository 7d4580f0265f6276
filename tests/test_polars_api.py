"""The polars API: predict on DataFrames and LazyFrames, the namespaces, batchinfer.run; same engine as the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

import batchinfer
from batchinfer.cli import main
from batchinfer.errors import JobFileError
from tests.test_cli import job, make_frame


@pytest.fixture(scope="module")
def frame():
    return make_frame(700, seed=4)


def test_dataframe_predict_matches_the_cli(tmp_path, frame, tiny_classifier):
    frame.write_parquet(tmp_path / "in.parquet")
    assert CliRunner().invoke(main, ["run", str(job(tmp_path, tiny_classifier, input_path="in.parquet"))]).exit_code == 0
    cli = pl.read_parquet(str(tmp_path / "out" / "*.parquet"))
    got = batchinfer.predict(frame, "text", task="text-classification", model=str(tiny_classifier), batch_rows=1000)
    assert got.equals(cli)
    assert frame.infer.predict("text", task="text-classification", model=str(tiny_classifier),
                               batch_rows=1000).equals(cli)


def test_dataframe_with_skipped_rows_matches_the_job_with_output(tmp_path, frame, tiny_classifier):
    """One code path: a DataFrame predicted in memory drops the bad rows the job with output= drops."""
    long_rows = [7, 150, 420]
    texts = frame["text"].to_list()
    for row in long_rows:
        texts[row] = "word " * 200  # more tokens than the tiny model's 64 positions
    bad = frame.with_columns(text=pl.Series(texts))
    options = {"task": "text-classification", "model": str(tiny_classifier), "batch_rows": 200, "on_error": "skip",
               "truncation": False}
    got = batchinfer.predict(bad, "text", **options)
    written = batchinfer.predict(bad, "text", output=str(tmp_path / "out"), **options)
    assert got.equals(written)
    assert got.height == bad.height - len(long_rows) and not set(long_rows) & set(got["row_id"].to_list())
    with pytest.raises(JobFileError, match="dead-letter' needs output="):
        batchinfer.predict(bad, "text", **{**options, "on_error": "dead-letter"})


def test_options_are_the_job_file_options(frame, tiny_classifier, tiny_encoder):
    got = batchinfer.predict(frame.head(50), "text", task="text-classification", model=str(tiny_classifier),
                             top_k=2, batch_size=8, keep_columns=["row_id"], columns={"label": "labels"})
    assert got.columns == ["row_id", "labels", "score"] and got.schema["labels"] == pl.List(pl.String)
    emb = batchinfer.predict(frame.head(20), "text", task="feature-extraction", model=str(tiny_encoder),
                             normalize=True, backend="torch")
    assert emb.schema["embedding"] == pl.Array(pl.Float32, 32)
    with pytest.raises(TypeError, match="unknown option 'topk'.*top_k"):
        batchinfer.predict(frame, "text", task="text-classification", model=str(tiny_classifier), topk=2)
    with pytest.raises(JobFileError, match="batching.batch_size"):
        batchinfer.predict(frame, "text", task="text-classification", model=str(tiny_classifier), batch_size=0)


def test_expressions(frame, tiny_classifier, tiny_encoder):
    small = frame.head(40)
    out = small.with_columns(pred=pl.col("text").infer.classify(model=str(tiny_classifier)),
                             vec=pl.col("text").infer.embed(model=str(tiny_encoder), normalize=True))
    want = batchinfer.predict(small, "text", task="text-classification", model=str(tiny_classifier))
    assert out["pred"].struct.field("label").to_list() == want["label"].to_list()
    np.testing.assert_allclose(out["pred"].struct.field("score").to_numpy(), want["score"].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(out["vec"].to_numpy(), axis=1), 1.0, atol=1e-5)


def test_lazyframe_streams_to_an_output_and_returns_a_lazyframe(tmp_path, frame, tiny_classifier):
    lazy = frame.lazy().filter(pl.col("row_id") % 2 == 0)
    out = lazy.infer.predict("text", task="text-classification", model=str(tiny_classifier),
                             output=str(tmp_path / "lazy"), batch_rows=100)
    assert isinstance(out, pl.LazyFrame)
    got = out.collect()
    want = batchinfer.predict(lazy.collect(), "text", task="text-classification", model=str(tiny_classifier))
    assert got.equals(want)
    assert len(list((tmp_path / "lazy").glob("part-*.parquet"))) == 4 and (tmp_path / "lazy" / "_SUCCESS").exists()


def test_pipelines_are_loaded_once(frame, tiny_classifier, monkeypatch):
    import batchinfer.pipelines as pipelines

    batchinfer.predict(frame.head(5), "text", task="text-classification", model=str(tiny_classifier))
    calls = []
    monkeypatch.setattr(pipelines, "load_backend", lambda *a, **k: calls.append(a))
    for _ in range(10):
        batchinfer.predict(frame.head(5), "text", task="text-classification", model=str(tiny_classifier))
    assert calls == []


def test_run_from_python(tmp_path, frame, tiny_classifier):
    frame.write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    result = batchinfer.run(path)
    assert result.rows == 700 and result.exit_code == 0 and result.output_path == str(tmp_path / "out")
    assert result.timings["total"] > 0 and result.failed == 0
    again = batchinfer.run(path, ["output.mode=resume"])
    assert again.already_complete
    spec = batchinfer.load_job(path)
    assert batchinfer.run(spec, ["output.mode=overwrite"]).rows == 700
    with pytest.raises(batchinfer.OutputError, match="already holds a complete run"):
        batchinfer.run(path)


MEMORY_PROBE = textwrap.dedent("""
    import resource, sys, json
    import polars as pl
    import batchinfer
    n, model, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    lazy = (pl.LazyFrame({"id": pl.int_range(0, n, eager=True)})
            .with_columns(text=pl.format("review {} was fine and short", pl.col("id"))))
    result = batchinfer.predict(lazy, "text", task="text-classification", model=model, output=out,
                                batch_rows=20000, batch_size=512, keep_columns=["id"])
    rows = result.select(pl.len()).collect().item()
    print(json.dumps({"rows": rows, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


@pytest.mark.slow
def test_lazyframe_memory_is_bounded(tmp_path, tiny_classifier):
    peaks = {}
    for n in (50_000, 500_000):
        proc = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(n), str(tiny_classifier),
                               str(tmp_path / f"out{n}")], capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-2000:]
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        assert result["rows"] == n
        peaks[n] = result["peak_mb"]
    print(f"peak RSS: 50k rows {peaks[50_000]:.0f} MB, 500k rows {peaks[500_000]:.0f} MB")
    assert peaks[500_000] < peaks[50_000] * 1.25 + 64, peaks
