"""What every backend offers: numpy arrays in, numpy arrays out. A backend knows nothing of tasks or tables.

A backend is one class in one module (named in `batchinfer.backends.MODULES`, exported as `BACKEND`), built as
`Backend(graph, *, threads, cache_dir, precision, quantize, device)` once the registry has checked that the
options are among those it declares and that the device (batchinfer.devices.Device) is on this machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np


class Backend(Protocol):
    # what the class declares (read by the registry before anything is loaded)
    name: ClassVar[str]  # canonical name, e.g. "openvino"
    aliases: ClassVar[tuple[str, ...]]  # other names accepted for it, e.g. ("ov",)
    requires: ClassVar[str]  # the module that must be importable, e.g. "openvino"
    install_hint: ClassVar[str]  # what to run when it is not
    precisions: ClassVar[tuple[str, ...]]  # the first is the default: ("fp32", "bf16")
    quantizations: ClassVar[tuple[str, ...]]  # the first is the default: ("none", "int8-weights")
    modalities: ClassVar[tuple[str, ...]]  # the inputs it runs: ("text", "image", "audio")
    devices: ClassVar[tuple[str, ...]]  # device kinds (devices.KINDS), the first the default: ("cpu", "cuda")
    runs_graphs: ClassVar[bool]  # runs exported graphs (each part of a model its own); else the transformers model
    # what an instance tells its callers
    description: str  # runtime, version, threads and precision, for the log
    reduced: str | None  # below fp32 ("dynamic-int8", "bf16", "int8-weights+bf16"), None at fp32
    artifact: Path | None  # the file the runtime loaded (model.onnx, model.xml); None for an in-process model

    def forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


def as_model_dtype(array: np.ndarray) -> np.ndarray:
    """Token ids and masks as int64, pixels as float32: what torch.onnx exported."""
    if array.dtype.kind == "f":
        return array.astype(np.float32, copy=False)
    return array.astype(np.int64, copy=False)


OOM_MARKERS = ("out of memory", "failed to allocate memory", "bad_alloc", "bad allocation", "alloc_failed",
               "cudaerrormemoryallocation")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether a runtime's error says the batch did not fit in memory (torch's OutOfMemoryError, ONNX Runtime's
    and OpenVINO's allocation failures, Python's MemoryError): a smaller batch may fit."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return any(marker in text for marker in OOM_MARKERS)


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
