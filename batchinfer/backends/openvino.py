"""OpenVINO backend: the cached ONNX export converted once to OpenVINO IR (cached), compiled for the CPU."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from batchinfer.backends.base import as_model_dtype, cpu_has_bf16
from batchinfer.devices import CPU, Device
from batchinfer.digest import digest
from batchinfer.errors import DeviceError
from batchinfer.model import ModelGraph
from batchinfer.model.cache_folder import load_cached
from batchinfer.model.openvino_ir import COMPLETE, ir_path, is_stateful
from batchinfer.model.openvino_stateful import BEAM_IDX

log = logging.getLogger("batchinfer")


class OpenVinoBackend:
    name = "openvino"
    aliases = ("ov",)
    requires = "openvino"
    install_hint = 'pip install "batchinfer[openvino]"'
    precisions = ("fp32", "bf16")
    quantizations = ("none", "int8-weights")
    modalities = ("text", "image", "audio")
    devices = ("cpu", "gpu")  # gpu: OpenVINO's GPU plugin (Intel GPUs)
    runs_graphs = True

    def __init__(self, graph: ModelGraph, *, threads: int, cache_dir: Path, precision: str = "fp32",
                 quantize: str = "none", device: Device = CPU) -> None:
        from batchinfer.model.openvino_quiet import openvino

        ov = openvino()
        self.graph = graph
        if precision == "bf16" and not cpu_has_bf16():
            log.warning("openvino: this CPU has no AVX-512 BF16/AMX, so bf16 is not available; running fp32")
            precision = "fp32"
        parts = ([quantize] if quantize != "none" else []) + (["bf16"] if precision == "bf16" else [])
        self.reduced = "+".join(parts) or None  # below fp32: answers are checked against fp32 first
        core = ov.Core()  # OpenVINO would pick bf16 by itself on such CPUs: fp32 unless asked
        target = ov_device(device, core.available_devices if device.is_gpu else [])
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                  **({} if device.is_gpu else {"INFERENCE_NUM_THREADS": threads})}
        self.stateful = is_stateful(graph)  # a decoder whose key/value cache stays inside the request
        if self.stateful:  # the CPU plugin would keep it in uint8 by default: not the model's numbers
            config["KV_CACHE_PRECISION"] = "bf16" if precision == "bf16" else "f32"
        self.artifact, self.compiled = load_cached(
            lambda broken: ir_path(graph, cache_dir, quantize=quantize, broken=broken),
            lambda path: _compile(core, path, target, config), marker=COMPLETE, runtime="OpenVINO")
        self._inputs = [_port_name(port) for port in self.compiled.inputs]
        given = {_port_name(port) for port in self.compiled.outputs}
        self._wanted = [name for name in graph.outputs if name in given]  # what this model gives
        self._request = self.compiled.create_infer_request()
        self.description = (f"openvino {ov.__version__.split('-')[0]} "
                            f"({target if device.is_gpu else f'CPU, {threads} threads'}, {self.reduced or 'fp32'})")

    def forward(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {name: inputs[name] if name == BEAM_IDX else as_model_dtype(inputs[name]) for name in self._inputs}
        # inputs are read in place (a decoder step's cross-attention keys and values are large, and the same
        # every step); outputs come back as arrays of their own (infer copies them out of the request)
        result = self._request.infer(feed, share_inputs=True)
        if self.graph.with_past and not self.stateful:  # a decoder step: logits and the key/value cache
            return {_port_name(port): result[port] for port in self.compiled.outputs}
        return {name: result[self.compiled.output(name)] for name in self._wanted}

    def reset_state(self) -> None:
        """Empty a stateful decoder's key/value cache (before a new batch's prompt step)."""
        self._request.reset_state()


COMPILED = "compiled"  # OpenVINO's own cache of compiled models, in the IR's folder (removed with it)


def ov_device(device: Device, available: list[str]) -> str:
    """OpenVINO's name for `device` ('CPU', 'GPU', 'GPU.1'); DeviceError naming OpenVINO's devices if absent."""
    if not device.is_gpu:
        return "CPU"
    gpus = [d for d in available if d.startswith("GPU")]  # one GPU is listed as 'GPU', several as 'GPU.0', ...
    if device.index is None and gpus:
        return gpus[0]
    name = f"GPU.{device.index}"
    if name in gpus or (device.index == 0 and gpus == ["GPU"]):
        return name if name in gpus else "GPU"
    raise DeviceError(f"runtime.device = '{device}': OpenVINO finds no such GPU here (its devices: "
                      f"{', '.join(available) or 'none'})",
                      hint="use runtime.device = 'cpu', or install the GPU driver OpenVINO needs")


def compiled_cache(path: Path, target: str, config: dict) -> Path:
    """The folder of OpenVINO's compiled blobs for one target and compile config. OpenVINO's own cache key
    leaves out settings that change the compiled model (2026.4: a bf16 compile imported the f32 blob and gave
    wrong numbers, or NaN), so each config gets its own folder."""
    return path.parent / COMPILED / digest({"target": target, **config})


def _compile(core, path: Path, target: str, config: dict):
    """The IR compiled for `target` ('CPU', 'GPU.1') through OpenVINO's model cache: a later run imports the
    compiled blob (about a third of the compile time). A blob cache that cannot be used (read-only, damaged)
    is emptied and skipped."""
    blobs = compiled_cache(path, target, config)
    try:
        return core.compile_model(str(path), target, {**config, "CACHE_DIR": str(blobs)})
    except Exception as exc:  # noqa: BLE001  (OpenVINO's own error types)
        log.debug("openvino: compiling without the model cache: %s", exc)
        shutil.rmtree(blobs, ignore_errors=True)
        return core.compile_model(str(path), target, config)


def _port_name(port) -> str:
    """The exported name of a port: OpenVINO may add internal names (`/Concat_output_0`) to the same tensor."""
    names = sorted(port.get_names())
    return next((n for n in names if not n.startswith("/")), port.get_any_name())


BACKEND = OpenVinoBackend
