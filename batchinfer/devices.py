"""Where a model runs: `runtime.device` ("cpu", "cuda", "cuda:N", "gpu", "gpu:N", "auto"), parsed, found on
this machine, and matched with what the backend offers (its `devices`).

"cuda" is an NVIDIA GPU (ONNX Runtime's CUDA provider, torch); "gpu" is OpenVINO's GPU device (an Intel
GPU). Nothing here imports a runtime: the GPUs are found from the driver's files, the runtimes are asked by
their backends (`OrtBackend`, ...) when they load.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from batchinfer.errors import DeviceError

KINDS = ("cpu", "cuda", "gpu")
FORMS = "'cpu', 'cuda', 'cuda:N', 'gpu' (OpenVINO), 'gpu:N' or 'auto'"
_PATTERN = re.compile(r"^(cpu|cuda|gpu)(?::(\d+))?$")


@dataclass(frozen=True)
class Device:
    kind: str  # one of KINDS
    index: int | None = None  # None: the first one (cpu: always None)

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"

    @property
    def ordinal(self) -> int:
        return self.index or 0

    @property
    def is_gpu(self) -> bool:
        return self.kind != "cpu"


CPU = Device("cpu")


def check_form(text: str) -> str:
    """`text` if it is a device or 'auto', else ValueError saying the forms (job file validation)."""
    if text != "auto" and not _PATTERN.match(text) or text.startswith("cpu:"):
        raise ValueError(f"{text!r} is not a device; write {FORMS}")
    return text


def parse_device(text: str) -> Device | None:
    """The device `text` names; None for 'auto' (chosen per backend: `resolve_device`)."""
    check_form(text)
    if text == "auto":
        return None
    kind, index = _PATTERN.match(text).groups()
    return Device(kind, None if index is None else int(index))


def cuda_gpus() -> list[str]:
    """The NVIDIA GPUs this process may use (the driver's /proc entries, less those CUDA_VISIBLE_DEVICES hides):
    their bus ids; empty where there is no driver."""
    root = Path(os.environ.get("BATCHINFER_NVIDIA_PROC", "/proc/driver/nvidia/gpus"))
    try:
        found = sorted(p.name for p in root.iterdir())
    except OSError:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return found
    picked = []
    for item in (v.strip() for v in visible.split(",")):
        if not item.isdigit() or int(item) >= len(found):
            break  # CUDA stops at the first id that is not there
        picked.append(found[int(item)])
    return picked


def resolve_device(text: str, backend: type, *, gpus: list[str] | None = None, others: list[str] = ()) -> Device:
    """The device a job runs on: `text` (runtime.device) checked against the backend's `devices` and this
    machine; 'auto' is CUDA where the backend runs on it and a GPU is found, else the CPU. DeviceError if it
    is not there, naming what was found. `others`: the backends that run on that kind of device (the hint)."""
    wanted = parse_device(text)
    offered = backend.devices
    if wanted is None:
        if "cuda" in offered and (cuda_gpus() if gpus is None else gpus):
            return Device("cuda")
        return CPU
    if wanted.kind not in offered:
        raise DeviceError(f"runtime.device = {str(wanted)!r}: the {backend.name} backend runs on "
                          f"{' or '.join(map(repr, offered))}",
                          hint=f"use model.backend = {' or '.join(map(repr, others))} for {wanted.kind}" if others
                          else "use runtime.device = 'cpu'")
    if wanted.kind == "cuda":
        found = cuda_gpus() if gpus is None else gpus
        if wanted.ordinal >= len(found):
            have = f"{len(found)} NVIDIA GPU(s) ({', '.join(found)})" if found else "no NVIDIA GPU (only the CPU)"
            raise DeviceError(f"runtime.device = {str(wanted)!r}: this machine has {have}"
                              + (f" visible through CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}"
                                 if "CUDA_VISIBLE_DEVICES" in os.environ else ""),
                              hint="use runtime.device = 'cpu' or 'auto' (the GPU where there is one), or run "
                                   "where a GPU is")
    return wanted

