"""runtime.device / --device on a machine without a GPU: parsing, finding GPUs (the driver's files, simulated),
choosing the runtime's device (ONNX Runtime providers, OpenVINO devices, torch), and failing before anything
is loaded or written when the device is not there."""

from __future__ import annotations

import pytest

from batchinfer.backends import backend_class, device_for
from batchinfer.backends.openvino import ov_device
from batchinfer.backends.ort import ort_providers
from batchinfer.devices import CPU, Device, cuda_gpus, parse_device, resolve_device
from batchinfer.errors import DeviceError, JobFileError, ModelError
from batchinfer.job import parse_job
from tests.test_cli import invoke, job, make_frame


@pytest.fixture
def gpus(tmp_path, monkeypatch):
    """A machine with NVIDIA GPUs, as the driver lists them: gpus(n)."""
    def make(count: int):
        root = tmp_path / "nvidia-gpus"
        root.mkdir(exist_ok=True)
        for i in range(count):
            (root / f"0000:0{i + 1}:00.0").mkdir()
        monkeypatch.setenv("BATCHINFER_NVIDIA_PROC", str(root))
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("BATCHINFER_NVIDIA_PROC", str(tmp_path / "no-driver"))
    return make


def test_device_forms():
    assert parse_device("cpu") == CPU and parse_device("cuda") == Device("cuda")
    assert parse_device("cuda:1") == Device("cuda", 1) and str(parse_device("gpu:2")) == "gpu:2"
    assert parse_device("auto") is None
    for bad in ("tpu", "cuda:", "cuda:x", "cpu:0", "CUDA 1", ""):
        with pytest.raises(ValueError, match="is not a device; write 'cpu', 'cuda', 'cuda:N'"):
            parse_device(bad)
    spec = {"input": {"path": "in.parquet", "column": "text"}, "output": {"path": "out"},
            "model": {"name": "m", "task": "text-classification"}}
    assert parse_job({**spec, "runtime": {"device": " CUDA:0 "}}, source="job").runtime.device == "cuda:0"
    assert parse_job(spec, source="job").runtime.device == "cpu"  # the CPU path stays the default
    with pytest.raises(JobFileError, match="runtime.device.*'tpu' is not a device"):
        parse_job({**spec, "runtime": {"device": "tpu"}}, source="job")


def test_gpus_are_found_from_the_driver_and_cuda_visible_devices(gpus, monkeypatch):
    assert cuda_gpus() == []
    gpus(3)
    assert len(cuda_gpus()) == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert cuda_gpus() == ["0000:03:00.0", "0000:01:00.0"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,7,0")  # CUDA stops at the first id that is not there
    assert cuda_gpus() == ["0000:02:00.0"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert cuda_gpus() == []


def test_a_device_that_is_not_there_names_what_is(gpus, monkeypatch):
    ort = backend_class("ort")
    assert resolve_device("auto", ort) == CPU and resolve_device("cpu", ort) == CPU
    with pytest.raises(DeviceError, match="'cuda': this machine has no NVIDIA GPU \\(only the CPU\\)"):
        resolve_device("cuda", ort)
    gpus(2)
    assert resolve_device("auto", ort) == Device("cuda") and resolve_device("cuda:1", ort) == Device("cuda", 1)
    assert resolve_device("auto", backend_class("openvino")) == CPU  # openvino's GPUs are Intel's: asked for
    with pytest.raises(DeviceError, match="'cuda:2': this machine has 2 NVIDIA GPU"):
        resolve_device("cuda:2", ort)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    with pytest.raises(DeviceError, match="1 NVIDIA GPU.*visible through CUDA_VISIBLE_DEVICES=1"):
        resolve_device("cuda:1", ort)
    with pytest.raises(DeviceError, match="the openvino backend runs on 'cpu' or 'gpu'") as info:
        device_for("openvino", "cuda")
    assert "model.backend = 'ort' or 'torch'" in info.value.hint
    with pytest.raises(DeviceError, match="the ipex backend runs on 'cpu'"):
        device_for("ipex", "gpu")
    assert DeviceError.exit_code == 11


def test_each_runtime_is_given_the_device():
    assert ort_providers(CPU, ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert ort_providers(Device("cuda", 1), ["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        ("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]
    with pytest.raises(DeviceError, match="this onnxruntime 1.32.0 has no CUDA provider") as info:
        ort_providers(Device("cuda"), ["AzureExecutionProvider", "CPUExecutionProvider"], "1.32.0")
    assert "onnxruntime-gpu" in info.value.hint
    assert ov_device(CPU, []) == "CPU"
    assert ov_device(Device("gpu"), ["CPU", "GPU"]) == "GPU" and ov_device(Device("gpu", 0), ["CPU", "GPU"]) == "GPU"
    assert ov_device(Device("gpu", 1), ["CPU", "GPU.0", "GPU.1"]) == "GPU.1"
    with pytest.raises(DeviceError, match="OpenVINO finds no such GPU here \\(its devices: CPU\\)"):
        ov_device(Device("gpu"), ["CPU"])


def test_torch_on_a_gpu_it_cannot_use_and_fp16_on_the_cpu(tiny_classifier, gpus):
    import torch

    from batchinfer.job import ModelSpec, RuntimeSpec
    from batchinfer.pipelines import build_pipeline

    with pytest.raises(ModelError, match="precision = 'fp16' runs on a GPU"):
        build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend="torch",
                                 precision="fp16"))
    gpus(1)  # the driver lists a GPU, but this torch is a CPU build
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="torch .* here cannot use a CUDA GPU"):
            build_pipeline(ModelSpec(name=str(tiny_classifier), task="text-classification", backend="torch"),
                           RuntimeSpec(device="cuda"))


@pytest.mark.parametrize("device, found, says", [
    ("cuda", 0, "this machine has no NVIDIA GPU"),
    ("cuda", 1, "no CUDA provider"),  # a GPU, but the CPU build of onnxruntime: found when the model loads
    ("gpu", 0, "OpenVINO finds no such GPU"),
])
def test_a_job_on_a_missing_device_exits_11_and_writes_nothing(tmp_path, tiny_classifier, gpus, monkeypatch,
                                                               device, found, says):
    gpus(found)
    make_frame(50).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tiny_classifier, input_path=str(tmp_path / "in.parquet"), output=str(tmp_path / "out"),
               extra="[runtime]\nprogress = 'never'")
    backend = ["--set", "model.backend=openvino"] if device == "gpu" else []
    result = invoke("run", str(path), "--device", device, *backend)
    assert result.exit_code == 11, result.output
    assert says in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.parquet"))
    if not found:  # auto: the CPU here
        assert invoke("run", str(path), "--device", "auto", *backend).exit_code == 0
