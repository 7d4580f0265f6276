"""OpenVINO backend: the cached ONNX export converted once to OpenVINO IR (cached), compiled for the CPU."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from batchinfer.backends.base import ModelGraph, cpu_has_bf16
from batchinfer.backends.ort import _as_model_dtype
from batchinfer.cache_folder import build_once, load_cached
from batchinfer.errors import ModelError
from batchinfer.export import export_onnx

log = logging.getLogger("batchinfer")
COMPLETE = "ir.json"


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
    final = Path(cache_dir) / "openvino" / name

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


class OpenVinoBackend:
    name = "openvino"

    def __init__(self, graph: ModelGraph, *, threads: int, cache_dir: Path, precision: str = "fp32",
                 quantize: str = "none") -> None:
        try:
            import openvino as ov
        except ImportError:
            raise ModelError("backend 'openvino' needs the openvino package",
                             hint='pip install "batchinfer[openvino]"') from None
        self.graph = graph
        if precision == "bf16" and not cpu_has_bf16():
            log.warning("openvino: this CPU has no AVX-512 BF16/AMX, so bf16 is not available; running fp32")
            precision = "fp32"
        parts = ([quantize] if quantize != "none" else []) + (["bf16"] if precision == "bf16" else [])
        self.reduced = "+".join(parts) or None  # below fp32: answers are checked against fp32 first
        core = ov.Core()  # OpenVINO would pick bf16 by itself on such CPUs: fp32 unless asked
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                  "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
        self.ir, self.compiled = load_cached(
            lambda broken: ir_path(graph, cache_dir, quantize=quantize, broken=broken),
            lambda path: core.compile_model(str(path), "CPU", config), marker=COMPLETE, runtime="OpenVINO")
        self.artifact = self.ir.parent
        self._inputs = [port.get_any_name() for port in self.compiled.inputs]
        self._request = self.compiled.create_infer_request()
        self.description = (f"openvino {ov.__version__.split('-')[0]} "
                            f"(CPU, {threads} threads, {self.reduced or 'fp32'})")

    def forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {name: _as_model_dtype(inputs[name]) for name in self._inputs}
        result = self._request.infer(feed)
        out = result[self.compiled.output(self.graph.output_name)]
        return {self.graph.output_name: np.array(out, copy=True)}
