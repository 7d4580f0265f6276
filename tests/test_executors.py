"""The executor registry: runtime.executor names, loaded lazily; the runner imports no executor's module."""

from __future__ import annotations

import subprocess
import sys

import pytest

from batchinfer.engine.executors import EXECUTORS, load_executor
from batchinfer.engine.local import LocalExecutor
from batchinfer.errors import JobFileError


def test_names_load_their_executor():
    assert isinstance(load_executor("local"), LocalExecutor)
    with pytest.raises(JobFileError) as info:
        load_executor("spark")
    assert "runtime.executor = 'spark'" in info.value.message and "local, ray" in info.value.hint


def test_every_registered_executor_has_the_protocol():
    for name in EXECUTORS:
        executor = load_executor(name)
        assert callable(executor.check) and callable(executor.run)


def test_the_runner_imports_no_executor_module():
    code = ("import sys, batchinfer.engine.runner; "
            "print(sorted(m for m in sys.modules if m in ('batchinfer.distributed.ray', 'batchinfer.engine.local')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
