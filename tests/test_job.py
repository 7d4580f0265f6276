"""The job file schema: every mistake is caught before work starts and named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchinfer.errors import JobFileError
from batchinfer.job import load_job

GOOD = """
[input]
path = "data/*.parquet"
column = "text"

[model]
name = "some-org/some-model"
task = "text-classification"

[output]
path = "out"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, overrides=()) -> str:
    with pytest.raises(JobFileError) as info:
        load_job(write(tmp_path, text), overrides)
    return str(info.value)


def test_good_job_has_defaults_and_paths_relative_to_job_file(tmp_path):
    spec = load_job(write(tmp_path, GOOD))
    assert spec.model.backend == "ort"
    assert spec.batching.batch_size == 32
    assert spec.output.compression == "zstd"
    assert spec.input.path == str(tmp_path / "data/*.parquet")
    assert spec.output.path == str(tmp_path / "out")
    assert spec.model.name == "some-org/some-model"  # not a folder: left as a hub id


def test_local_model_folder_is_resolved_relative_to_job_file(tmp_path):
    (tmp_path / "models" / "m").mkdir(parents=True)
    spec = load_job(write(tmp_path, GOOD.replace("some-org/some-model", "models/m")))
    assert spec.model.name == str(tmp_path / "models" / "m")


def test_urls_are_left_alone(tmp_path):
    spec = load_job(write(tmp_path, GOOD.replace('"data/*.parquet"', '"s3://bucket/in/*.parquet"')))
    assert spec.input.path == "s3://bucket/in/*.parquet"


def test_unknown_key_lists_allowed_keys(tmp_path):
    msg = error_of(tmp_path, GOOD.replace('column = "text"', 'column = "text"\ncolum = "x"'))
    assert "input.colum: unknown key; did you mean 'column'?" in msg
    assert "path, column, columns, template, format" in msg


def test_unknown_section(tmp_path):
    msg = error_of(tmp_path, GOOD + "\n[extras]\nx = 1\n")
    assert "extras: unknown key" in msg and "input, model, output, batching, runtime" in msg


def test_unknown_task_and_backend_list_allowed_values(tmp_path):
    msg = error_of(tmp_path, GOOD.replace('"text-classification"', '"speech-recognition"') + "")
    assert "model.task: unknown task 'speech-recognition'; choose one of: text-classification, feature-extraction, " \
           "token-classification, zero-shot-classification, image-classification" in msg
    msg = error_of(tmp_path, GOOD, ["model.backend=tensorrt"])
    assert "model.backend" in msg and "'ort', 'openvino', 'ov', 'ipex' or 'torch'" in msg


def test_wrong_type_names_the_key(tmp_path):
    msg = error_of(tmp_path, GOOD + '\n[batching]\nbatch_size = "big"\n')
    assert "batching.batch_size" in msg and "'big'" in msg


def test_missing_input_section_and_key(tmp_path):
    msg = error_of(tmp_path, GOOD.split("[model]")[0].replace("[input]", "[inputs]") + "[model]" + GOOD.split("[model]")[1])
    assert "input: required key is missing" in msg
    msg = error_of(tmp_path, GOOD.replace('column = "text"\n', ""))
    assert "input.column: required key is missing" in msg


def test_task_options_must_fit_the_task(tmp_path):
    msg = error_of(tmp_path, GOOD.replace('task = "text-classification"', 'task = "feature-extraction"\ntop_k = 3'))
    assert "top_k" in msg and "feature-extraction" in msg


def test_not_toml_and_missing_file(tmp_path):
    assert "not valid TOML" in error_of(tmp_path, "[input\npath=")
    with pytest.raises(JobFileError, match="does not exist"):
        load_job(tmp_path / "nope.toml")


def test_set_overrides_are_typed(tmp_path):
    spec = load_job(write(tmp_path, GOOD), ["batching.batch_size=64", "model.backend=torch",
                                            "output.keep_columns=['a', 'b']", "model.top_k=2",
                                            "input.csv.delimiter=;"])
    assert spec.batching.batch_size == 64
    assert spec.model.backend == "torch"
    assert spec.output.keep_columns == ["a", "b"]
    assert spec.model.options.top_k == 2
    assert spec.input.csv.delimiter == ";"


@pytest.mark.parametrize("bad", ["nonsense", "=3", "batch_size=3", "model.name.x=1"])
def test_bad_set_overrides(tmp_path, bad):
    with pytest.raises(JobFileError, match="--set|model.name"):
        load_job(write(tmp_path, GOOD), [bad])


def test_set_paths_are_relative_to_the_working_folder(tmp_path, monkeypatch):
    jobs, here = tmp_path / "jobs", tmp_path / "here"
    jobs.mkdir()
    (here / "models" / "m").mkdir(parents=True)
    monkeypatch.chdir(here)
    spec = load_job(write(jobs, GOOD), ["input.path=in/*.parquet", "output.path=out2", "runtime.cache_dir=cache",
                                        "model.name=models/m"])
    assert spec.input.path == str(here / "in/*.parquet")
    assert spec.output.path == str(here / "out2")
    assert spec.runtime.cache_dir == str(here / "cache")
    assert spec.model.name == str(here / "models" / "m")
    listed = load_job(write(jobs, GOOD), ['input.path=["a.csv", "s3://b/c.csv"]'])
    assert listed.input.path == [str(here / "a.csv"), "s3://b/c.csv"]


def test_paths_in_the_job_file_stay_relative_to_it_beside_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    spec = load_job(write(tmp_path, GOOD), ["model.backend=torch", "model.name=some-org/other"])
    assert spec.output.path == str(tmp_path / "out")
    assert spec.model.name == "some-org/other"  # a hub id, not a folder here
