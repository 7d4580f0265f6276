"""Dynamic int8 (per-channel weights) of a model's ONNX export, cached beside it as its own artifact."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from batchinfer.model.cache_dir import ONNX_INT8
from batchinfer.model.cache_folder import build_once
from batchinfer.model.graph import ModelGraph
from batchinfer.model.onnx_export import export_onnx

log = logging.getLogger("batchinfer")

QUANT_COMPLETE = ONNX_INT8.marker


def quantize_onnx(graph: ModelGraph, cache_dir: Path, *, method: str = "dynamic-int8",
                  broken: str | None = None) -> Path:
    """The model's ONNX export with dynamic int8 weights (per channel), cached as its own artifact."""
    import onnxruntime

    source = export_onnx(graph, cache_dir)
    final = Path(cache_dir) / ONNX_INT8.folder / f"{source.parent.name}-{method}-ort{onnxruntime.__version__}"

    def build(tmp: Path) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        log.info("model: quantizing the ONNX export (%s) into %s", method, final)
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # onnxruntime.quantization advises on the root logger
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(str(source), str(tmp / "model.onnx"), weight_type=QuantType.QInt8,
                                 per_channel=True)
        finally:
            root.setLevel(level)
        (tmp / QUANT_COMPLETE).write_text(json.dumps({"model": graph.ref.name, "from": str(source),
                                                      "method": method}, indent=2))

    build_once(final, QUANT_COMPLETE, build, what=f"quantizing {graph.ref.name}", kind="quantized ONNX model",
               broken=broken)
    return final / "model.onnx"
