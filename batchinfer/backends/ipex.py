"""Intel Extension for PyTorch backend: the PyTorch reference model passed through `ipex.optimize`.

Intel discontinued IPEX after 2.8; OpenVINO (`backend = "openvino"`) is the maintained Intel path. IPEX 2.8
needs torch 2.8 and a transformers release before 5.24, so it lives in its own environment
(`pip install "batchinfer[ipex]"`). Versions are checked before importing it, because a mismatched IPEX
prints an error and raises AttributeError at import.
"""

from __future__ import annotations

import logging
import warnings
from importlib import metadata
from pathlib import Path

from batchinfer.backends.base import cpu_has_bf16
from batchinfer.backends.pytorch import TorchBackend
from batchinfer.errors import ModelError
from batchinfer.model import ModelGraph

log = logging.getLogger("batchinfer")

INSTALL_HINT = 'pip install "batchinfer[ipex]" (Intel Extension for PyTorch 2.8; it pins torch 2.8 and ' \
               'transformers < 5.24); or use backend = "openvino", the maintained Intel path'


def _version(package: str) -> tuple[int, ...] | None:
    try:
        text = metadata.version(package)
    except metadata.PackageNotFoundError:
        return None
    return tuple(int(p) for p in text.split("+")[0].split(".")[:2] if p.isdigit())


def check_ipex() -> None:
    """Raise one clear ModelError if IPEX is missing or does not match torch and transformers."""
    ipex, torch, transformers = (_version(p) for p in ("intel-extension-for-pytorch", "torch", "transformers"))
    if ipex is None:
        raise ModelError("backend 'ipex' needs Intel Extension for PyTorch, which is not installed", hint=INSTALL_HINT)
    if torch is None or torch[:2] != ipex[:2]:
        found = ".".join(map(str, torch or ())) or "none"
        raise ModelError(f"Intel Extension for PyTorch {'.'.join(map(str, ipex))} needs torch "
                         f"{'.'.join(map(str, ipex[:2]))}.*, but torch {found} is installed", hint=INSTALL_HINT)
    if transformers is not None and transformers >= (5, 24):
        raise ModelError(f"Intel Extension for PyTorch {'.'.join(map(str, ipex))} does not import with "
                         f"transformers {'.'.join(map(str, transformers))} (5.24 removed an API it uses)",
                         hint=INSTALL_HINT)


class IpexBackend(TorchBackend):
    name = "ipex"
    aliases = ()
    requires = "intel_extension_for_pytorch"
    install_hint = INSTALL_HINT
    precisions = ("fp32", "bf16")
    quantizations = ("none",)
    modalities = ("text", "image", "audio")
    devices = ("cpu",)
    runs_graphs = False
    artifact = None

    def __init__(self, graph: ModelGraph, *, threads: int, cache_dir: Path | None = None, precision: str = "fp32",
                 quantize: str = "none", device=None) -> None:
        check_ipex()
        warnings.warn("Intel discontinued Intel Extension for PyTorch after 2.8; backend 'openvino' is the "
                      "maintained Intel path", FutureWarning, stacklevel=2)
        try:
            import intel_extension_for_pytorch as ipex
        except (ImportError, AttributeError, RuntimeError) as exc:  # a mismatch raises AttributeError
            raise ModelError(f"Intel Extension for PyTorch cannot be imported: {exc}", hint=INSTALL_HINT) from None
        super().__init__(graph, threads=threads)
        import torch

        dtype = torch.float32
        if precision == "bf16":
            if cpu_has_bf16():
                dtype = torch.bfloat16
            else:
                log.warning("ipex: this CPU has no AVX-512 BF16/AMX, so bf16 is not available; running fp32")
        self.model = ipex.optimize(self.model, dtype=dtype)
        self.dtype = dtype
        self.reduced = "bf16" if dtype is torch.bfloat16 else None  # answers then checked against fp32
        self.description = (f"ipex {ipex.__version__} on torch {torch.__version__} "
                            f"({'bf16' if dtype is torch.bfloat16 else 'fp32'}, {threads} threads)")

    def forward(self, inputs):
        torch = self._torch
        if self.dtype is torch.float32:
            return super().forward(inputs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return super().forward(inputs)


BACKEND = IpexBackend
