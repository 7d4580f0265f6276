"""Executors: what runs a job's units. One protocol; the registry below is the one place an executor is named.

The driver (engine/runner.py) checks the job, loads the model, opens the sink and learns what is done; an
executor predicts every unit not done and writes each through the sink (`sink.write`: part, then manifest
entry); the driver commits. Executors are loaded by name, lazily: the runner imports none of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from batchinfer.errors import JobFileError
from batchinfer.job import JobSpec

# runtime.executor -> "module:Class" (imported on first use)
EXECUTORS = {
    "local": "batchinfer.engine.local:LocalExecutor",
    "ray": "batchinfer.distributed.ray:RayExecutor",
}


@dataclass(frozen=True)
class Units:
    """What the driver hands an executor: the job's units, those already committed, and where to write."""

    spec: JobSpec
    source: Any  # io.Source or io.frame_source.FrameSource
    keep: list[str]  # input columns copied to the output
    predictions: dict[str, str]  # prediction column -> output name
    sink: Any  # io.ParquetSink or io.memory_sink.MemorySink: open, its lock held by the driver
    done: dict[str, dict]  # units committed by an earlier run: skipped
    predicted: Any = None  # engine/gate.py Predicted: the driver's results for a unit's first rows, to reuse


class Executor(Protocol):
    def check(self, spec: JobSpec, source) -> None:
        """Raise a BatchinferError if this executor cannot run the job; called before the model loads."""

    def run(self, units: Units, *, pipe, on_rows: Callable[[int], None] | None = None) -> dict[str, int]:
        """Predict and write every unit not done; return this run's counts (`rows_this_run`, `rows_in`).

        `pipe`: the driver's Pipeline (an executor that predicts elsewhere builds its own from the spec);
        `on_rows(n)`: n more input rows were read (progress).
        """


def load_executor(name: str) -> Executor:
    """The executor registered as `name` (runtime.executor)."""
    if name not in EXECUTORS:
        raise JobFileError(f"runtime.executor = {name!r} is not an executor",
                           hint=f"choose one of: {', '.join(EXECUTORS)}")
    module, _, cls = EXECUTORS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()
