"""What the job around the model costs: the same rows end to end (Parquet in, Parquet out) and through the
backend's forward pass alone, side by side in one run, each against the machine's fp32 peak.

    python bench/job_gap.py [--rows 20000] [--repeats 3] [--backends ort,openvino] [--job embed|sentiment]

Data: SST-2 train sentences (../shared/data/sst2/train.parquet) cycled to --rows. "forward alone": the texts
tokenised, planned (sorted by length, 32 rows a batch) and padded before the clock starts, three warm-up
batches, then one pass. "job": `run_job` from the Parquet file to a Parquet output with batch 32, timed
around the call (so set-up, the model load with a cached export, reading, tokenising and writing count;
Python's imports do not). Each measurement runs in its own process, interleaved over the repeats; the table
gives medians, each mode's share of the fp32 matmul peak (numpy 2048x2048, the best of two measurements, one
before and one after the runs) and the job's busy seconds per stage from its timings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from peers import MODELS, TRAIN  # noqa: E402  (the same two jobs and sentences as the peers' tables)

BATCH = 32


def _job(data: Path, out: Path, job: str, backend: str) -> dict:
    from batchinfer.engine.runner import run_job
    from batchinfer.job import parse_job

    name, task = MODELS[job]
    model = {"name": name, "task": task, "backend": backend} | ({"normalize": True} if job == "embed" else {})
    started = time.perf_counter()
    result = run_job(parse_job({"input": {"path": str(data), "column": "text"}, "model": model,
                                "batching": {"batch_size": BATCH},
                                "output": {"path": str(out), "mode": "overwrite", "keep_columns": ["id"]}}),
                     progress=False)
    return {"seconds": time.perf_counter() - started, "rows": result.rows, "timings": result.timings}


def _forward(data: Path, job: str, backend: str) -> dict:
    import polars as pl
    from harness import per_token_weights

    from batchinfer.engine.batcher import plan_batches
    from batchinfer.job import ModelSpec
    from batchinfer.pipelines import build_pipeline

    name, task = MODELS[job]
    texts = pl.read_parquet(data)["text"].to_list()
    pipe = build_pipeline(ModelSpec(name=name, task=task, backend=backend))
    encoded = pipe.task.encode(texts)
    lengths = pipe.task.batch_lengths(encoded)
    batches = [pipe.task.pad(encoded, rows) for rows in plan_batches(lengths, batch_size=BATCH)]
    for batch in batches[:3]:
        pipe.backend.forward(batch)
    started = time.perf_counter()
    for batch in batches:
        pipe.backend.forward(batch)
    return {"seconds": time.perf_counter() - started, "rows": len(texts), "tokens": int(lengths.sum()),
            "flops_per_token": 2 * per_token_weights(pipe.ref.path)}


def _child(args) -> None:
    data, out = Path(args.data), Path(args.out)
    print(json.dumps(_job(data, out, args.job, args.backend) if args.mode == "job"
                     else _forward(data, args.job, args.backend)))


def _run(mode: str, backend: str, args, data: Path, out: Path) -> dict:
    command = [sys.executable, __file__, "--child", mode, "--backend", backend, "--job", args.job,
               "--data", str(data), "--out", str(out)]
    printed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True).stdout
    return json.loads(printed.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default="ort,openvino")
    parser.add_argument("--job", choices=list(MODELS), default="embed")
    parser.add_argument("--child", choices=["job", "forward"], help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.mode = args.child
        _child(args)
        return
    import polars as pl
    from harness import machine, matmul_peak

    backends = args.backends.split(",")
    with tempfile.TemporaryDirectory() as work:
        data = Path(work) / "short.parquet"
        sentences = pl.read_parquet(TRAIN)["sentence"].to_list()
        texts = (sentences * (args.rows // len(sentences) + 1))[:args.rows]
        pl.DataFrame({"id": range(args.rows), "text": texts}).write_parquet(data)
        peaks = [matmul_peak()]
        runs: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.repeats):
            for backend in backends:
                for mode in ("forward", "job"):
                    runs.setdefault((backend, mode), []).append(_run(mode, backend, args, data, Path(work) / "out"))
        peaks.append(matmul_peak())
    peak = max(peaks)
    print(f"# {args.job} ({MODELS[args.job][0]}), {args.rows:,} SST-2 train rows, batch {BATCH}, "
          f"median of {args.repeats}; {machine()}")
    print(f"# fp32 matmul peak {peak:.0f} GFLOP/s (before {peaks[0]:.0f}, after {peaks[1]:.0f})\n")
    print("| backend | forward alone rows/s | share of peak | job rows/s | share of peak | job / forward | "
          "job: set-up s | tokenize s | infer s | write s |\n|---|---|---|---|---|---|---|---|---|---|")
    for backend in backends:
        forward, job = runs[(backend, "forward")], runs[(backend, "job")]
        flops_per_row = forward[0]["tokens"] * forward[0]["flops_per_token"] / forward[0]["rows"]
        f_rate = statistics.median(r["rows"] / r["seconds"] for r in forward)
        j_rate = statistics.median(r["rows"] / r["seconds"] for r in job)
        ratio = statistics.median(j["rows"] / j["seconds"] / (f["rows"] / f["seconds"]) for f, j in zip(forward, job))
        stage = {key: statistics.median(r["timings"].get(key, 0.0) for r in job)
                 for key in ("setup", "tokenize_s", "infer_s", "write_s")}
        print(f"| {backend} | {f_rate:.1f} | {f_rate * flops_per_row / 1e9 / peak:.0%} | {j_rate:.1f} | "
              f"{j_rate * flops_per_row / 1e9 / peak:.0%} | {ratio:.2f} | {stage['setup']:.1f} | "
              f"{stage['tokenize_s']:.1f} | {stage['infer_s']:.1f} | {stage['write_s']:.1f} |")


if __name__ == "__main__":
    main()
