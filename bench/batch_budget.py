"""The backend's forward pass alone at fixed batch rows and at token budgets, with its share of the fp32 peak.

    python bench/batch_budget.py [--backends ort,openvino] [--configs rows:8,rows:32,tokens:512,tokens:1024]

Data: SST-2 dev sentences (../shared/data/sst2/dev.parquet, twice: 1,744 rows, about 25 tokens each) and 300
generated paragraphs of 80 to 480 words (cut at the sample model's 128 tokens). Model: the sample sentiment
model. Each set is tokenised once and planned with `plan_batches` (sorted by length): `rows:N` closes a batch
at N rows, `tokens:T` at rows x padded length T (up to 512 rows). Per configuration: three warm-up batches,
then the median of 3 passes over the set; GFLOP/s counts 2 x the encoder layers' weights per real token, and
the share is over numpy's 2048x2048 fp32 matmul peak measured at the start of the backend's process.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
MODEL = "sample:sentiment-minilm"
DEFAULT = "rows:8,rows:16,rows:32,rows:64,tokens:256,tokens:512,tokens:1024,tokens:2048,tokens:4096"


def _sets() -> dict[str, list[str]]:
    import polars as pl
    from text import SST2, WORDS  # bench/text.py's dev sentences and long-paragraph words

    rng = random.Random(0)
    return {"short": pl.read_parquet(SST2)["sentence"].to_list() * 2,
            "long": [" ".join(rng.choice(WORDS) for _ in range(rng.randint(80, 480))) for _ in range(300)]}


def measure(backend: str, configs: list[tuple[str, int]]) -> dict:
    from harness import matmul_peak, per_token_weights

    from batchinfer.engine.batcher import plan_batches
    from batchinfer.job import ModelSpec
    from batchinfer.pipelines import build_pipeline

    peak = matmul_peak()
    pipe = build_pipeline(ModelSpec(name=MODEL, task="text-classification", backend=backend))
    per_token = 2 * per_token_weights(pipe.ref.path)
    results = {"peak_gflops": peak, "rows": []}
    for set_name, texts in _sets().items():
        encoded = pipe.task.encode(texts)
        lengths = pipe.task.batch_lengths(encoded)
        for kind, value in configs:
            plan = plan_batches(lengths, batch_size=value if kind == "rows" else 512,
                                max_tokens=value if kind == "tokens" else None)
            batches = [pipe.task.pad(encoded, idx) for idx in plan]
            for batch in batches[:3]:
                pipe.backend.forward(batch)
            passes = []
            for _ in range(3):
                started = time.perf_counter()
                for batch in batches:
                    pipe.backend.forward(batch)
                passes.append(time.perf_counter() - started)
            seconds = statistics.median(passes)
            gflops = int(lengths.sum()) * per_token / seconds / 1e9
            results["rows"].append({"set": set_name, "config": f"{kind}:{value}", "batches": len(plan),
                                    "rows_per_s": len(texts) / seconds, "gflops": gflops, "share": gflops / peak,
                                    "tokens_per_row": float(lengths.mean())})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="ort,openvino")
    parser.add_argument("--configs", default=DEFAULT)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configs = [(kind, int(value)) for kind, value in (c.split(":") for c in args.configs.split(","))]
    if args.child:
        print(json.dumps(measure(args.child, configs)))
        return
    from harness import machine

    print(f"# forward pass alone, {MODEL}; {machine()}")
    for backend in args.backends.split(","):  # one process per backend: each measures its own peak
        out = subprocess.run([sys.executable, __file__, "--child", backend, "--configs", args.configs],
                             stdout=subprocess.PIPE, text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(f"\n## {backend} (fp32 matmul peak {result['peak_gflops']:.0f} GFLOP/s)\n"
              "| set | batches closed at | batches | rows/s | GFLOP/s | share of peak |\n|---|---|---|---|---|---|")
        for row in result["rows"]:
            print(f"| {row['set']} ({row['tokens_per_row']:.1f} tokens/row) | {row['config']} | {row['batches']} | "
                  f"{row['rows_per_s']:.1f} | {row['gflops']:.1f} | {row['share']:.0%} |")


if __name__ == "__main__":
    main()
