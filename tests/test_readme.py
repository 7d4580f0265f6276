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
