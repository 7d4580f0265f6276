"""Every ```python block of the README runs, in order, from a copy of the repository's jobs and data."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

import batchinfer

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    for folder in ("jobs", "sample_data"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    for job in ("jobs/sentiment.toml", "jobs/embed.toml"):  # what the quick start leaves behind
        assert batchinfer.run(job).exit_code == 0
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    assert os.path.isdir(tmp_path / "output" / "novels")


def _section(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {name}\n")
    return text[start:text.index("\n## ", start + 1)]


def test_readme_first_job_commands_run(tmp_path):
    """The newcomer section's shell lines run as written (batchinfer init, validate, run --limit, run), and
    its nine-line job file runs and writes the columns it promises."""
    import subprocess
    import sys

    import polars as pl

    section = _section("Your first job on your own CSV")
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    commands = [line.split("#")[0].strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)
                for line in block.splitlines() if line.startswith("batchinfer ")]
    assert [c.split()[1] for c in commands] == ["init", "validate", "run", "run"]
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "batchinfer.cli", *command.split()[1:]], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}: {done.stderr}"
    assert (tmp_path / "sample_data" / "reviews-predictions" / "_SUCCESS").exists()  # next to the data

    (job,) = re.findall(r"```toml\n(.*?)```", section, flags=re.S)
    assert len([line for line in job.splitlines() if line.strip()]) <= 9
    shutil.copy(ROOT / "sample_data" / "reviews.csv", tmp_path / "reviews.csv")
    (tmp_path / "job.toml").write_text(job)
    assert batchinfer.run(str(tmp_path / "job.toml")).exit_code == 0
    out = pl.read_parquet(str(tmp_path / "reviews-scored" / "*.parquet"))
    assert out.columns[-2:] == ["label", "score"] and out.height == pl.read_csv(tmp_path / "reviews.csv").height
    assert "**units**" in section  # defined here, before the reference first uses the word


def test_readme_tables_are_whole():
    """Every markdown table is one block of rows (a blank line inside splits it into two tables)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    for i, line in enumerate(lines[:-2]):
        if line.startswith("|") and not lines[i + 1].strip() and lines[i + 2].startswith("|") \
                and not lines[i + 3].startswith("|---"):
            raise AssertionError(f"README.md line {i + 3}: a table row after a blank line: {lines[i + 2][:60]}")


def test_readme_names_no_outside_file_without_saying_what_it_is():
    text = (ROOT / "README.md").read_text()
    assert "DESIGN.md" not in text
    for match in re.finditer(r"\.\./shared", text):
        around = text[max(0, match.start() - 600):match.end() + 600]
        assert "not in the repository" in around or "outside the repository" in around
