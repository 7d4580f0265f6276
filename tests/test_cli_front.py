"""The front door: every subcommand maps errors the same way, listing commands, validate, export, skip."""

from __future__ import annotations

import json

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

    monkeypatch.setattr(runner, "check_job", broken)
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
