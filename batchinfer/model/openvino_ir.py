"""The ONNX export converted once to OpenVINO IR (and, with `quantize = "int8-weights"`, compressed by NNCF),
cached beside it. A generating decoder is converted from PyTorch instead, as a stateful model
(`openvino_stateful.py`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from batchinfer.errors import ModelError
from batchinfer.model.cache_dir import OPENVINO
from batchinfer.model.cache_folder import build_once
from batchinfer.model.graph import ModelGraph
from batchinfer.model.onnx_export import export_onnx, fingerprint
from batchinfer.versions import version_of

log = logging.getLogger("batchinfer")
COMPLETE = OPENVINO.marker


def ir_path(graph: ModelGraph, cache_dir: Path, *, quantize: str = "none", broken: str | None = None) -> Path:
    """The IR folder is named by the ONNX export's fingerprint plus the OpenVINO version (and `-stateful` for a
    generating decoder, converted from PyTorch).

    `quantize = "int8-weights"`: weights compressed to int8 by NNCF (its own cached IR); OpenVINO then runs
    those layers with int8 kernels where the CPU has VNNI. `broken`: why the cached IR cannot be used: rebuilt.
    """
    from batchinfer.model.openvino_quiet import openvino

    ov = openvino()
    stateful = is_stateful(graph)
    onnx_path = None if stateful else export_onnx(graph, cache_dir)
    name = f"{fingerprint(graph)}-ov{ov.__version__.split('-')[0]}" + ("-stateful" if stateful else "")
    if quantize != "none":
        name += f"-{quantize}-nncf{_nncf_version()}"
    final = Path(cache_dir) / OPENVINO.folder / name

    def build(tmp: Path) -> None:
        log.info("model: converting %s to OpenVINO IR%s into %s", "the decoder (stateful)" if stateful else
                 "the ONNX export", "" if quantize == "none" else f" ({quantize})", final)
        model = _stateful_model(graph) if stateful else ov.Core().read_model(str(onnx_path))
        if quantize != "none":
            nncf = _import_nncf()
            model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        (tmp / COMPLETE).write_text(json.dumps({"onnx": str(onnx_path) if onnx_path else None,
                                                "stateful": stateful, "openvino": ov.__version__,
                                                "quantize": quantize}, indent=2))

    build_once(final, COMPLETE, build, what=f"converting {graph.ref.name} to OpenVINO IR", kind="OpenVINO IR",
               broken=broken)
    return final / "model.xml"


def is_stateful(graph: ModelGraph) -> bool:
    """A decoder-only model's generation step: its key/value cache lives inside the OpenVINO model."""
    return graph.with_past and graph.part is None


def _stateful_model(graph: ModelGraph):
    from batchinfer.model.openvino_stateful import convert_stateful
    from batchinfer.model.torch_model import load_torch_model

    return convert_stateful(load_torch_model(graph))


def _nncf_version() -> str:
    """NNCF's version (it names the IR) without importing it: a cached IR needs no NNCF."""
    return version_of("nncf") or _import_nncf().__version__  # (the import says how to install it)


def _import_nncf():
    from batchinfer.model.openvino_quiet import nncf as import_nncf

    try:
        nncf = import_nncf()
    except ImportError:
        raise ModelError("quantize = 'int8-weights' needs NNCF", hint='pip install "batchinfer[openvino]"') from None
    return nncf
