"""End to end through the command line: Parquet and CSV in, Parquet out, row order, exit codes."""

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
from click.testing import CliRunner

from batchinfer.cli import main
from batchinfer.errors import InputError, JobFileError, ModelError, OutputError

ROWS = 5000
WORDS = "good bad fine awful great terrible movie plot actor scene boring moving lovely dull".split()


def make_frame(n: int, seed: int = 0, start: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(1, 30))) for _ in range(n)]
    texts[3] = ""
    texts[5] = None
    return pl.DataFrame({"row_id": np.arange(start, start + n), "text": texts,
                         "group": [f"g{i % 7}" for i in range(n)], "value": rng.random(n)})


def job(tmp_path: Path, model: Path, *, input_path: str, task="text-classification", extra="",
        output="out") -> Path:
    text = f"""
[input]
path = {json.dumps(input_path)}
column = "text"
batch_rows = 1000

[model]
name = {json.dumps(str(model))}
task = "{task}"

[output]
path = "{output}"
{extra}
"""
    path = tmp_path / "job.toml"
    path.write_text(text)
    return path


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def read_output(path: Path) -> pl.DataFrame:
    return pl.read_parquet(str(path / "*.parquet"))


def test_parquet_files_in_order_with_kept_columns(tmp_path, tiny_classifier):
    data = tmp_path / "data"
    data.mkdir()
    frames = [make_frame(ROWS // 2, seed=1), make_frame(ROWS // 2, seed=2, start=ROWS // 2)]
    for i, frame in enumerate(frames):  # several row groups per file: streamed, not read whole
        frame.write_parquet(data / f"part{i}.parquet", row_group_size=700)
    result = invoke("run", str(job(tmp_path, tiny_classifier, input_path="data/*.parquet")))
    assert result.exit_code == 0, result.output
    assert f"{ROWS:,} rows" in result.output
    out = read_output(tmp_path / "out")
    expected = pl.concat(frames)
    assert out.columns == ["row_id", "text", "group", "value", "label", "score"]
    assert out.select(expected.columns).equals(expected)
    assert set(out["label"].unique()) <= {"negative", "neutral", "positive"}
    assert out["score"].is_between(0, 1).all()
    parts = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert sorted(p.name for p in (tmp_path / "out" / "_batchinfer" / "done").iterdir()) == [
        p.removesuffix(".parquet") + ".json" for p in parts if p.startswith("part-")]
    assert parts[:2] == ["_SUCCESS", "_batchinfer"] and len(parts) == 2 + 2 * 3  # 2,500 rows a file, 1,000 a part
    assert json.loads((tmp_path / "out" / "_SUCCESS").read_text())["rows"] == ROWS
    assert pq.ParquetFile(tmp_path / "out" / parts[2]).metadata.row_group(0).column(0).compression == "ZSTD"


def test_csv_folder_matches_parquet_predictions(tmp_path, tiny_classifier):
    frame = make_frame(ROWS, seed=3)
    (tmp_path / "pq").mkdir()
    (tmp_path / "csv").mkdir()
    frame.write_parquet(tmp_path / "pq" / "a.parquet")
    frame.head(2000).write_csv(tmp_path / "csv" / "a.csv")
    frame.slice(2000).write_csv(tmp_path / "csv" / "b.csv")
    assert invoke("run", str(job(tmp_path, tiny_classifier, input_path="pq", output="out_pq"))).exit_code == 0
    result = invoke("run", str(job(tmp_path, tiny_classifier, input_path="csv", output="out_csv")))
    assert result.exit_code == 0, result.output
    from_pq, from_csv = read_output(tmp_path / "out_pq"), read_output(tmp_path / "out_csv")
    assert from_csv["row_id"].to_list() == list(range(ROWS))
    assert from_csv["label"].to_list() == from_pq["label"].to_list()
    np.testing.assert_allclose(from_csv["score"].to_numpy(), from_pq["score"].to_numpy(), atol=1e-6)
    assert from_csv["text"].fill_null("").to_list() == frame["text"].fill_null("").to_list()


def test_embeddings_top_k_renames_keep_columns_and_compression(tmp_path, tiny_encoder, tiny_classifier):
    make_frame(300).write_parquet(tmp_path / "in.parquet")
    result = invoke("run", str(job(tmp_path, tiny_encoder, input_path="in.parquet", task="feature-extraction",
                                   extra='keep_columns = ["row_id"]\ncompression = "snappy"\n'
                                         '[output.columns]\nembedding = "vec"')),
                    "--set", "model.normalize=true")
    assert result.exit_code == 0, result.output
    out = read_output(tmp_path / "out")
    assert out.columns == ["row_id", "vec"]
    assert out.schema["vec"] == pl.Array(pl.Float32, 32)
    np.testing.assert_allclose(np.linalg.norm(out["vec"].to_numpy(), axis=1), 1.0, atol=1e-5)
    part = next((tmp_path / "out").glob("part-*.parquet"))
    assert pq.ParquetFile(part).metadata.row_group(0).column(0).compression == "SNAPPY"

    result = invoke("run", str(job(tmp_path, tiny_classifier, input_path="in.parquet", output="out_k")),
                    "--set", "model.top_k=3", "--set", "model.backend=torch")
    assert result.exit_code == 0, result.output
    out = read_output(tmp_path / "out_k")
    assert out.schema["label"] == pl.List(pl.String) and out.schema["score"] == pl.List(pl.Float32)
    assert all(sorted(labels) == ["negative", "neutral", "positive"] for labels in out["label"].to_list())
    assert all(s[0] >= s[1] >= s[2] for s in out["score"].to_list())


def test_empty_parquet_file_yields_an_empty_part_with_the_schema(tmp_path, tiny_classifier):
    make_frame(10).head(0).write_parquet(tmp_path / "empty.parquet")
    assert invoke("run", str(job(tmp_path, tiny_classifier, input_path="empty.parquet"))).exit_code == 0
    out = read_output(tmp_path / "out")
    assert out.height == 0 and out.columns[-2:] == ["label", "score"]


@pytest.mark.parametrize("case, exit_code, message", [
    ("broken toml", JobFileError.exit_code, "not valid TOML"),
    ("unknown key", JobFileError.exit_code, "unknown key"),
    ("missing input", InputError.exit_code, "does not exist"),
    ("empty glob", InputError.exit_code, "matches no files"),
    ("missing column", InputError.exit_code, "its columns are: row_id, text, group, value"),
    ("wrong column type", InputError.exit_code, "not text"),
    ("missing model", ModelError.exit_code, "does not exist"),
    ("model without head", ModelError.exit_code, "no classification head"),
    ("output exists", OutputError.exit_code, "already holds an interrupted or foreign run"),
    ("prediction clashes with input", JobFileError.exit_code, "rename the prediction"),
])
def test_user_mistakes_give_clear_errors_and_exit_codes(tmp_path, tiny_classifier, tiny_encoder, case,
                                                        exit_code, message):
    make_frame(20).write_parquet(tmp_path / "in.parquet")
    model, extra, sets = tiny_classifier, "", []
    input_path = "in.parquet"
    if case == "missing input":
        input_path = "nope.parquet"
    elif case == "empty glob":
        input_path = "nothing/*.parquet"
    elif case == "missing column":
        sets = ["input.column=txt"]
    elif case == "wrong column type":
        sets = ["input.column=value"]
    elif case == "missing model":
        model = tmp_path / "no" / "such" / "model"
    elif case == "model without head":
        model = tiny_encoder
    elif case == "output exists":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "part-00000-000000.parquet").write_bytes(b"x")
    elif case == "prediction clashes with input":
        sets = ["output.columns={label = 'group'}"]
    path = job(tmp_path, model, input_path=input_path, extra=extra)
    if case == "broken toml":
        path.write_text("[input\n")
    elif case == "unknown key":
        path.write_text(path.read_text() + "\n[runtime]\nthreadz = 2\n")
    result = invoke("run", str(path), *[a for s in sets for a in ("--set", s)])
    assert result.exit_code == exit_code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    if case == "output exists":  # the earlier run's file is untouched
        assert (tmp_path / "out" / "part-00000-000000.parquet").read_bytes() == b"x"
    else:  # nothing is written for a job that fails validation
        assert not (tmp_path / "out").exists()


def test_overwrite_replaces_an_earlier_output(tmp_path, tiny_classifier):
    make_frame(50).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    assert invoke("run", str(path)).exit_code == 0
    assert invoke("run", str(path)).exit_code == OutputError.exit_code
    assert invoke("run", str(path), "--set", "output.mode=overwrite").exit_code == 0
    assert read_output(tmp_path / "out").height == 50


def test_validate_checks_without_running(tmp_path, tiny_classifier):
    make_frame(20).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    result = invoke("validate", str(path))
    assert result.exit_code == 0 and "is valid" in result.output
    assert not (tmp_path / "out").exists()
    result = invoke("validate", str(path), "--set", "input.column=nope")
    assert result.exit_code == InputError.exit_code and "no column 'nope'" in result.output


def test_console_script_runs_in_a_subprocess(tmp_path, tiny_classifier):
    make_frame(200).write_csv(tmp_path / "in.csv")
    path = job(tmp_path, tiny_classifier, input_path="in.csv")
    exe = Path(sys.executable).parent / "batchinfer"
    env = {**os.environ, "BATCHINFER_CACHE": os.environ["BATCHINFER_CACHE"]}
    ok = subprocess.run([str(exe), "run", str(path), "--progress"], capture_output=True, text=True, env=env,
                        timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert "200 rows in" in ok.stdout and "rows/s" in ok.stdout
    assert "200/200 rows" in ok.stderr and "rows/s" in ok.stderr  # CSV: the total is exact once the file is read
    bad = subprocess.run([str(exe), "run", str(tmp_path / "missing.toml")], capture_output=True, text=True,
                         env=env, timeout=300)
    assert bad.returncode == JobFileError.exit_code and "does not exist" in bad.stderr


def test_header_only_csv_yields_an_empty_part(tmp_path, tiny_classifier):
    (tmp_path / "empty.csv").write_text("row_id,text\n")
    result = invoke("run", str(job(tmp_path, tiny_classifier, input_path="empty.csv")))
    assert result.exit_code == 0, result.output
    assert read_output(tmp_path / "out").columns == ["row_id", "text", "label", "score"]


def test_openvino_backend_in_a_job_file_matches_ort(tmp_path, tiny_classifier, monkeypatch):
    monkeypatch.chdir(tmp_path)  # --set paths are relative to the working folder
    make_frame(400).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path="in.parquet")
    assert invoke("run", str(path), "--set", "output.path=ort").exit_code == 0
    result = invoke("run", str(path), "--set", "output.path=ov", "--set", "model.backend=openvino")
    assert result.exit_code == 0, result.output
    ort, ov = read_output(tmp_path / "ort"), read_output(tmp_path / "ov")
    assert ov["label"].to_list() == ort["label"].to_list()
    np.testing.assert_allclose(ov["score"].to_numpy(), ort["score"].to_numpy(), atol=1e-4)
    assert json.loads((tmp_path / "ov" / "_SUCCESS").read_text())["backend"] == "openvino"


def test_set_and_python_paths_are_relative_to_the_working_folder(tmp_path, tiny_classifier, monkeypatch):
    import batchinfer

    (tmp_path / "jobs").mkdir()
    make_frame(30).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path / "jobs", tiny_classifier, input_path="../in.parquet")
    monkeypatch.chdir(tmp_path)
    assert invoke("run", str(path), "--set", "output.path=cli-out").exit_code == 0
    assert read_output(tmp_path / "cli-out").height == 30 and not (tmp_path / "jobs" / "cli-out").exists()
    result = batchinfer.run("jobs/job.toml", ["output.path=output/from-python", "input.path=in.parquet"])
    assert result.output_path == str(tmp_path / "output" / "from-python")
    assert read_output(tmp_path / "output" / "from-python").height == 30
