"""What every backend offers: numpy arrays in, numpy arrays out. A backend knows nothing of tasks or tables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np


class Backend(Protocol):
    name: str
    description: str

    def forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def cpu_has_bf16() -> bool:
    """bf16 kernels need AVX-512 BF16 or AMX; without them bf16 is emulated (slow) or refused."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_threads() -> int:
    """One intra-op thread per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)
