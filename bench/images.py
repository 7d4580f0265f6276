"""Image throughput: transformers' pipeline against batchinfer's backends, end to end.

    python bench/images.py [--repeat-data 10] [--repeats 3] [--task image-feature-extraction]

Data: ../shared/data/cifar10_sample (200 32x32 JPEGs) repeated, upscaled by the image processor to 224x224;
model: a ViT-Tiny shape (224x224, patch 16, hidden 192, 12 layers, 5.5M parameters) with random weights, built
locally (no hub): a classifier, or for image-feature-extraction a ViTModel with its pooler.
Rows: 1. transformers.pipeline(task) on PyTorch, batch 32, fed the decoded images (what most users write;
embeddings: `pool=True`, the pooler output batchinfer's `pooling = "auto"` gives); 2-4. batchinfer on torch,
ort and openvino, Parquet in, Parquet out, through the CLI code path; 5. the limit: the ORT session alone over
pre-processed batches (no decoding, no I/O). Agreement: equal labels, or the mean cosine of the embeddings.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DATA = HERE.parent.parent / "shared" / "data" / "cifar10_sample" / "cifar10_sample.parquet"
ROWS = ["transformers pipeline (torch)", "batchinfer torch", "batchinfer ort", "batchinfer openvino",
        "limit: ort forward only"]


def build_model(path: Path, task: str = "image-classification") -> Path:
    if (path / "config.json").exists():
        return path
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    labels = {i: name for i, name in enumerate(
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"])}
    config = ViTConfig(image_size=224, patch_size=16, hidden_size=192, num_hidden_layers=12, num_attention_heads=3,
                       intermediate_size=768, id2label=labels, label2id={v: k for k, v in labels.items()})
    model = ViTForImageClassification if task == "image-classification" else ViTModel
    model(config).eval().save_pretrained(str(path))
    ViTImageProcessor(size={"height": 224, "width": 224}).save_pretrained(str(path))
    return path


def build_data(path: Path, repeat: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(DATA, columns=["image", "label"])
    big = pa.concat_tables([table] * repeat)
    big = big.append_column("id", pa.array(range(big.num_rows)))
    pq.write_table(big, path)
    return path


def child(row: str, data: Path, model: Path, task: str) -> dict:
    import polars as pl
    from PIL import Image

    frame = pl.read_parquet(data)
    embeds = task == "image-feature-extraction"
    if row.startswith("transformers"):
        from transformers import pipeline

        pipe = pipeline(task, model=str(model), device="cpu")
        started = time.perf_counter()
        images = [Image.open(io.BytesIO(v["bytes"])).convert("RGB") for v in frame["image"].to_list()]
        out = pipe(images, batch_size=32, **({"pool": True} if embeds else {"top_k": 1}))
        seconds = time.perf_counter() - started
        if embeds:
            return {"rows": len(images), "seconds": seconds, "vectors": [o[0] for o in out]}
        return {"rows": len(images), "seconds": seconds, "labels": [o[0]["label"] for o in out]}
    from batchinfer.job import parse_job
    from batchinfer.pipelines import build_pipeline

    backend = row.split()[-1] if row.startswith("batchinfer") else "ort"
    spec = parse_job({"input": {"path": str(data), "column": "image", "batch_rows": 1024},
                      "model": {"name": str(model), "task": task, "backend": backend},
                      "output": {"path": tempfile.mkdtemp() + "/out", "keep_columns": ["id"]}})
    pipe = build_pipeline(spec.model, spec.runtime)  # load (and export) before the clock starts
    if row.startswith("limit"):
        images = [Image.open(io.BytesIO(v["bytes"])).convert("RGB") for v in frame["image"].to_list()]
        batches = [pipe.task.preprocess(images[i:i + 32]) for i in range(0, len(images), 32)]
        started = time.perf_counter()
        for batch in batches:
            pipe.backend.forward(batch)
        return {"rows": len(images), "seconds": time.perf_counter() - started}
    from batchinfer.engine.runner import run_job

    started = time.perf_counter()
    run_job(spec, pipeline=pipe, progress=False)
    seconds = time.perf_counter() - started
    out = pl.read_parquet(spec.output.path + "/*.parquet")
    if embeds:
        return {"rows": len(out), "seconds": seconds, "vectors": out["embedding"].to_list()}
    return {"rows": len(out), "seconds": seconds, "labels": out["label"].to_list()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--repeat-data", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--task", default="image-classification",
                        choices=["image-classification", "image-feature-extraction"])
    args = parser.parse_args()
    if args.row:
        print(json.dumps(child(args.row, args.data, args.model, args.task)))
        return
    from harness import machine, table

    work = HERE.parent / "output" / "bench-images"
    work.mkdir(parents=True, exist_ok=True)
    name = "vit-tiny-random" if args.task == "image-classification" else "vit-tiny-random-model"
    model = build_model(work / name, args.task)
    data = build_data(work / f"cifar-x{args.repeat_data}.parquet", args.repeat_data)
    print(f"# {args.task}, {200 * args.repeat_data} CIFAR-10 images, ViT-Tiny shape; {machine()}")
    print(table(Path(__file__), ROWS, ["--data", str(data), "--model", str(model), "--task", args.task],
                repeats=args.repeats, reference=ROWS[0]))


if __name__ == "__main__":
    main()
