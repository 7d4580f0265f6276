"""The ONNX export converted once to OpenVINO IR (and, with `quantize = "int8-weights"`, compressed by NNCF),
cached beside it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from batchinfer.errors import ModelError
from batchinfer.model.cache_dir import OPENVINO
from batchinfer.model.cache_folder import build_once
from batchinfer.model.graph import ModelGraph
from batchinfer.model.onnx_export import export_onnx

log = logging.getLogger("batchinfer")
COMPLETE = OPENVINO.marker


def ir_path(graph: ModelGraph, cache_dir: Path, *, quantize: str = "none", broken: str | None = None) -> Path:
    """The IR folder sits beside the ONNX export it was made from (same fingerprint, plus the OpenVINO version).

    `quantize = "int8-weights"`: weights compressed to int8 by NNCF (its own cached IR); OpenVINO then runs
    those layers with int8 kernels where the CPU has VNNI. `broken`: why the cached IR cannot be used: rebuilt.
    """
    import openvino as ov

    onnx_path = export_onnx(graph, cache_dir)
    name = f"{onnx_path.parent.name}-ov{ov.__version__.split('-')[0]}"
    nncf = _import_nncf() if quantize != "none" else None
    if nncf is not None:
        name += f"-{quantize}-nncf{nncf.__version__}"
    final = Path(cache_dir) / OPENVINO.folder / name

    def build(tmp: Path) -> None:
        log.info("model: converting the ONNX export to OpenVINO IR%s into %s",
                 "" if quantize == "none" else f" ({quantize})", final)
        model = ov.Core().read_model(str(onnx_path))
        if nncf is not None:
            model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        ov.save_model(model, str(tmp / "model.xml"), compress_to_fp16=False)
        (tmp / COMPLETE).write_text(json.dumps({"onnx": str(onnx_path), "openvino": ov.__version__,
                                                "quantize": quantize}, indent=2))

    build_once(final, COMPLETE, build, what=f"converting {graph.ref.name} to OpenVINO IR", kind="OpenVINO IR",
               broken=broken)
    return final / "model.xml"


def _import_nncf():
    try:
        import nncf
    except ImportError:
        raise ModelError("quantize = 'int8-weights' needs NNCF", hint='pip install "batchinfer[openvino]"') from None
    return nncf
