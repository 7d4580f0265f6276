"""ONNX Runtime settings that might pay on this CPU: graph optimisation level, batch size, intra-op threads.

    python bench/ort_settings.py [--rows 3000] [--repeats 3]

The sample sentiment model's fp32 export, forward pass alone over SST-2 dev sentences repeated to --rows,
pre-tokenised and length-sorted (what batchinfer feeds it). One setting changes at a time from batchinfer's
defaults (all optimisations, batch 32, one thread per core); median of --repeats, interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    import onnxruntime as ort
    import polars as pl
    from int8_options import DATA, batches, load

    from batchinfer.backends.base import default_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from harness import machine

    pipe = load("sentiment")
    dev = pl.read_parquet(DATA / "dev.parquet")["sentence"].to_list()
    texts = (dev * (args.rows // len(dev) + 1))[:args.rows]
    cores = default_threads()
    levels = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
              "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
              "all (default)": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}
    cases = [(f"optimisation {name}", level, 32, cores) for name, level in levels.items()]
    cases += [(f"batch {size}", levels["all (default)"], size, cores) for size in (8, 16, 64, 128)]
    cases += [(f"{threads} thread(s)", levels["all (default)"], 32, threads) for threads in range(1, cores)]
    fed = {size: batches(pipe, texts, size) for size in {c[2] for c in cases}}
    sessions = {}
    for name, level, _, threads in cases:
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(pipe.backend.artifact), options, providers=["CPUExecutionProvider"])
        sessions[name] = (session, [i.name for i in session.get_inputs()])
    seconds: dict[str, list[float]] = {c[0]: [] for c in cases}
    for _ in range(args.repeats):
        for name, _, size, _ in cases:
            session, inputs = sessions[name]
            started = time.perf_counter()
            for batch in fed[size]:
                session.run(None, {k: batch[k] for k in inputs})
            seconds[name].append(time.perf_counter() - started)
    print(f"# ORT settings, sample sentiment model, forward only, {args.rows} SST-2 rows; {machine()}")
    print(f"| setting | rows/s (median of {args.repeats}) | vs default |")
    print("|---|---|---|")
    base = statistics.median(seconds["optimisation all (default)"])
    for name, *_ in cases:
        median = statistics.median(seconds[name])
        print(f"| {name} | {args.rows / median:.1f} | {base / median:.2f}x |")


if __name__ == "__main__":
    main()
