"""The front door: every subcommand maps errors the same way, listing commands, validate, export, skip."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from batchinfer.cli import main
from batchinfer.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, InputError, JobFileError, ModelError
from tests.test_cli import job, make_frame


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(main, list(args), catch_exceptions=False, **kwargs)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("command", ["run", "validate"])
def test_failures_as_json_lines_carry_time_on_every_job_command(tmp_path, tiny_classifier, command):
    path = job(tmp_path, tiny_classifier, input_path="nope.parquet")
    result = invoke(command, str(path), "--log-format", "json")
    assert result.exit_code == InputError.exit_code, result.output
    (failed,) = [e for e in json_lines(result.output) if e.get("event") == "failed"]
    assert failed["exit_code"] == InputError.exit_code and failed["error"] == "input error"
    assert failed["time"].endswith("Z") and failed["level"] == "error"


def test_export_errors_map_like_run(tmp_path):
    result = invoke("export", str(tmp_path / "no-model"), "--task", "text-classification", "--log-format", "json")
    assert result.exit_code == ModelError.exit_code, result.output
    assert json_lines(result.output)[-1]["event"] == "failed"


def test_an_unexpected_exception_is_an_internal_error_with_its_trace(tmp_path, tiny_classifier, monkeypatch):
    import batchinfer.engine.runner as runner

    make_frame(10).write_parquet(tmp_path / "in.parquet")

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(runner, "prediction_names", broken)
    result = invoke("validate", str(job(tmp_path, tiny_classifier, input_path="in.parquet")))
    assert result.exit_code == EXIT_INTERNAL
    assert "internal error" in result.output and "Traceback" in result.output and "boom" in result.output
    result = invoke("validate", str(job(tmp_path, tiny_classifier, input_path="in.parquet")), "--log-format", "json")
    (failed,) = json_lines(result.output)
    assert failed["error"] == "internal error" and "boom" in failed["traceback"] and failed["exit_code"] == 1


def test_ctrl_c_in_any_subcommand_exits_130(monkeypatch, tmp_path):
    import batchinfer.model.cache_admin as cache_admin

    def interrupted(folder):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_admin, "entries", interrupted)
    result = invoke("cache", "list", "--cache-dir", str(tmp_path))
    assert result.exit_code == EXIT_INTERRUPTED and "interrupted" in result.output


def test_cache_clear_answered_no_exits_0(tmp_path):
    from batchinfer.model.cache_admin import FOLDERS

    (tmp_path / FOLDERS[0] / "half-built").mkdir(parents=True)  # an incomplete folder: listed, removable
    result = invoke("cache", "clear", "--cache-dir", str(tmp_path), input="n\n")
    assert result.exit_code == 0 and "nothing removed" in result.output, result.output
    assert (tmp_path / FOLDERS[0] / "half-built").is_dir()


def test_job_file_errors_on_validate_keep_exit_3(tmp_path):
    (tmp_path / "job.toml").write_text("[input\n")
    assert invoke("validate", str(tmp_path / "job.toml")).exit_code == JobFileError.exit_code


def test_if_complete_skip_loads_no_model_and_reports_the_outputs_counts(tmp_path, tiny_classifier, monkeypatch):
    import batchinfer.engine.runner as runner

    make_frame(2500).write_parquet(tmp_path / "in.parquet")
    path = str(job(tmp_path, tiny_classifier, input_path="in.parquet"))
    sets = ["--set", "input.null_text=error", "--set", "input.on_error=skip"]  # row 5 (a null) is left out
    first = invoke("run", path, *sets)
    assert first.exit_code == 8, first.output
    from batchinfer.job import load_job

    spec = load_job(path, ["input.null_text=error", "input.on_error=skip"])
    loaded = runner.build_pipeline(spec.model, spec.runtime)
    source = runner.check_job(spec, allow_complete=True)[0]
    assert runner.plan_of(spec, source, runner.model_ref(spec)) == runner.plan_of(spec, source, loaded.ref)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(runner, "build_pipeline", no_model)
    again = invoke("run", path, *sets, "--if-complete", "skip", "--summary-json", str(tmp_path / "s.json"))
    assert again.exit_code == 0, again.output
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["status"] == "already complete"
    assert (summary["rows_out"], summary["failed"], summary["units"]) == (2499, 1, 3)
    assert summary["model_fingerprint"] == json.loads((tmp_path / "out" / "_SUCCESS").read_text())["model_fingerprint"]


def test_backends_lists_the_registry():
    from batchinfer.backends import backend_class, backend_installed, backend_names

    result = invoke("backends")
    assert result.exit_code == 0, result.output
    blocks = {b.split()[0]: b for b in result.output.replace("\n  ", "\t").strip().split("\n")}
    assert list(blocks) == list(backend_names())
    for name, block in blocks.items():
        cls = backend_class(name)
        assert (cls.install_hint not in block) if backend_installed(name) else (f"not installed: {cls.install_hint}" in block)
        assert f"precision: {', '.join(cls.precisions)}" in block and f"quantize: {', '.join(cls.quantizations)}" in block
        assert f"inputs: {', '.join(cls.modalities)}" in block and all(a in block for a in cls.aliases)


def test_schema_validates_job_files_with_each_tasks_options():
    import sys
    from pathlib import Path

    import jsonschema

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    result = invoke("schema")
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sorted(Path(__file__).resolve().parents[1].glob("jobs/*.toml")):
        data = tomllib.loads(path.read_text())
        assert not list(validator.iter_errors(data)), path
    good = {"input": {"path": "in.parquet", "column": "text"}, "output": {"path": "out"},
            "model": {"name": "m", "task": "sentiment-analysis", "top_k": 2}}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "model": {**good["model"], "normalize": True}})  # another task's option
    assert not validator.is_valid({**good, "model": {**good["model"], "backend": "tensorrt"}})
    assert not validator.is_valid({**good, "output": {"path": "out", "moed": "resume"}})
    model = schema["$defs"]["ModelSpec"]
    classify = next(b["then"] for b in model["allOf"] if "text-classification" in b["if"]["properties"]["task"]["enum"])
    assert "labels per row" in classify["properties"]["top_k"]["description"]


def test_validate_lists_every_independent_problem(tmp_path, tiny_classifier):
    make_frame(20).write_parquet(tmp_path / "in.parquet")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "part-00000-000000.parquet").write_bytes(b"x")  # an output that holds a foreign run
    path = job(tmp_path, tmp_path / "no-model", input_path="in.parquet")
    result = invoke("validate", str(path), "--set", "input.column=nope")
    assert result.exit_code == InputError.exit_code, result.output  # the first problem's code
    assert "no column 'nope'" in result.output
    assert "model folder" in result.output and "does not exist" in result.output
    assert "output error" in result.output
    assert "is valid" not in result.output


def test_validate_shows_files_rows_and_output_schema(tmp_path, tiny_classifier):
    (tmp_path / "data").mkdir()
    make_frame(20).write_parquet(tmp_path / "data" / "a.parquet")
    make_frame(15, start=20).write_parquet(tmp_path / "data" / "b.parquet")
    path = job(tmp_path, tiny_classifier, input_path="data/*.parquet",
               extra='keep_columns = ["row_id"]\n[output.columns]\nlabel = "sentiment"')
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    assert "2 file(s), 35 rows" in result.output
    assert str(tmp_path / "data" / "a.parquet") in result.output and str(tmp_path / "data" / "b.parquet") in result.output
    assert "row_id: int64" in result.output and "text: " not in result.output
    assert "sentiment: string  (prediction)" in result.output and "score: float  (prediction)" in result.output
    assert not (tmp_path / "out").exists()


class _Built:
    def __init__(self, model, runtime):
        from types import SimpleNamespace

        self.model, self.runtime = model, runtime
        reduced = None if model.quantize == "none" and model.precision == "fp32" else model.quantize
        self.backend = SimpleNamespace(artifact=None, reduced=reduced)
        self.ref = SimpleNamespace(path=model.name)


def test_export_takes_the_options_that_shape_the_artifact(monkeypatch, tmp_path):
    import batchinfer.pipelines as pipelines

    built: list[_Built] = []
    monkeypatch.setattr(pipelines, "build_pipeline", lambda m, r: built.append(_Built(m, r)) or built[-1])
    result = invoke("export", "some/model", "--task", "sentiment-analysis", "--backend", "ov", "--quantize",
                    "int8-weights", "--precision", "bf16", "--max-length", "32", "--cache-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    first, reference = (b.model for b in built)
    assert (first.backend, first.quantize, first.precision, first.max_length) == ("openvino", "int8-weights",
                                                                                 "bf16", 32)
    assert (reference.quantize, reference.precision, reference.max_length) == ("none", "fp32", 32)  # the gate's
    assert built[0].runtime.cache_dir == str(tmp_path)
    wrong = invoke("export", "some/model", "--task", "text-classification", "--quantize", "int8-weights")
    assert wrong.exit_code == 2 and "offered by the openvino backend only" in wrong.output


def test_export_of_a_job_builds_what_the_job_loads(monkeypatch, tmp_path, tiny_classifier):
    import batchinfer.pipelines as pipelines
    from batchinfer.job import load_job

    built: list[_Built] = []
    monkeypatch.setattr(pipelines, "build_pipeline", lambda m, r: built.append(_Built(m, r)) or built[-1])
    path = job(tmp_path, tiny_classifier, input_path="in.parquet", extra="[runtime]\nthreads = 2")
    path.write_text(path.read_text().replace('task = "text-classification"',
                                             'task = "text-classification"\nmax_length = 16\ntop_k = 2'))
    result = invoke("export", str(path), "--set", "runtime.cache_dir=cache")
    assert result.exit_code == 0, result.output
    spec = load_job(path, ["runtime.cache_dir=cache"])
    assert [(b.model, b.runtime) for b in built] == [(spec.model, spec.runtime)]
    assert invoke("export", str(path), "--task", "ner").exit_code == 2


def test_export_of_a_job_warms_its_cache_for_real(tmp_path, tiny_classifier):
    from batchinfer.model.cache_admin import entries

    path = job(tmp_path, tiny_classifier, input_path="in.parquet", extra=f"[runtime]\ncache_dir = {json.dumps(str(tmp_path / 'c'))}")
    result = invoke("export", str(path))
    assert result.exit_code == 0, result.output
    assert "ready for text-classification on ort" in result.output
    kinds = [e.kind for e in entries(tmp_path / "c")]  # the export, the tokenizer the run reads without
    assert [k for k in kinds if k != "model-hash"] == ["onnx", "tokenizer"]  # transformers (and a folder hash)


def test_a_signal_exits_within_the_grace_period_even_if_cleanup_hangs(tmp_path):
    """SIGTERM runs every `finally`; one that hangs must not keep a scheduler's task alive (exit 143 anyway)."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "hang.py"
    script.write_text("""
import time
from batchinfer import cli

@cli.main.command()
def hang():
    try:
        print("ready", flush=True)
        time.sleep(60)
    finally:
        time.sleep(60)  # a cleanup that never finishes

cli.main()
""")
    env = {**os.environ, "BATCHINFER_CLEANUP_GRACE": "1"}
    proc = subprocess.Popen([sys.executable, str(script), "hang"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "cleanup did not finish within 1 s" in err


def test_import_and_help_leave_the_heavy_libraries_unimported():
    """`import batchinfer` and `batchinfer --help` import none of numpy, pyarrow, pydantic (a job's own
    imports), so a scheduler's health check or a notebook's import costs a tenth of a second; `JobSpec` and
    `load_job` still come from the package when first asked for."""
    import subprocess
    import sys

    heavy = ("numpy", "pyarrow", "pydantic", "polars", "torch", "transformers", "onnxruntime")
    code = ("import sys, batchinfer\n"
            "from batchinfer.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
            "from batchinfer import JobSpec, load_job\n"
            "print(JobSpec.__module__, load_job.__module__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "Usage:" in done.stdout and lines[-2] == "[]", done.stdout
    assert lines[-1] == "batchinfer.job batchinfer.job"


CONSOLE = """
import atexit, sys, threading, time
from pathlib import Path
from batchinfer.cli import console
marker = Path(sys.argv[1])
atexit.register(lambda: marker.write_text(marker.read_text() + "atexit;"))
if sys.argv[2] == "thread":  # a thread still working when the command ends: the exit waits for it
    threading.Thread(target=lambda: (time.sleep(1.0), marker.write_text(marker.read_text() + "thread;"))).start()
marker.write_text("")
sys.argv = ["batchinfer", *sys.argv[3:]]
console()
"""


@pytest.mark.parametrize("other_thread", [False, True])
def test_the_command_exits_with_its_code_after_the_exit_handlers_and_other_threads(tmp_path, tiny_classifier,
                                                                                 other_thread):
    """`batchinfer` leaves without the interpreter's slow teardown, yet with the command's exit code, after
    every atexit handler, and only once no other (non-daemon) thread is working; its output is whole."""
    import subprocess
    import sys

    import polars as pl
    import pyarrow.dataset as ds

    make_frame(30).write_parquet(tmp_path / "in.parquet")
    good = job(tmp_path, tiny_classifier, input_path=str(tmp_path / "in.parquet"), output=str(tmp_path / "out"))
    marker = tmp_path / "marker"
    mode = "thread" if other_thread else "alone"
    done = subprocess.run([sys.executable, "-c", CONSOLE, str(marker), mode, "run", str(good), "-q"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == ("thread;atexit;" if other_thread else "atexit;")
    assert pl.read_parquet(tmp_path / "out" / "*.parquet").height == 30 == ds.dataset(tmp_path / "out").count_rows()
    bad = subprocess.run([sys.executable, "-c", CONSOLE, str(marker), mode, "run", str(tmp_path / "nope.toml")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == JobFileError.exit_code and "nope.toml does not exist" in bad.stderr
    assert marker.read_text().endswith("atexit;")
