"""Where a run's set-up time goes (`batchinfer run -v`, the summary's `timings`): named phases, measured as
they happen inside `recording()` and not at all outside it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

STARTED = time.perf_counter()  # when `import batchinfer` began (this module is its first import)

# the phases of set-up: (key in the summary's timings, words in the -v line), in the order they happen
PHASES = (("check_s", "job check"), ("resolve_s", "model resolve and hash"), ("tokenizer_s", "tokenizer"),
          ("session_s", "runtime session"), ("gate_s", "agreement gate"))
_current: ContextVar[dict[str, float] | None] = ContextVar("batchinfer_phases", default=None)


@contextmanager
def recording() -> Iterator[dict[str, float]]:
    """Seconds per phase (PHASES keys) of what runs inside, in this thread."""
    seconds: dict[str, float] = {}
    token = _current.set(seconds)
    try:
        yield seconds
    finally:
        _current.reset(token)


@contextmanager
def phase(key: str) -> Iterator[None]:
    seconds = _current.get()
    started = time.perf_counter()
    try:
        yield
    finally:
        if seconds is not None:
            seconds[key] = round(seconds.get(key, 0.0) + time.perf_counter() - started, 3)


def describe(timings: dict[str, float]) -> str:
    """The measured set-up phases in words: 'job check 0.02, model resolve and hash 0.00, ...'."""
    return ", ".join(f"{words} {timings[key]:.2f}" for key, words in PHASES if key in timings)
