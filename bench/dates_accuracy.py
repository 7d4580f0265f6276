"""Exact match of the sample dates model on its held-out dates, through `batchinfer.run`.

    python bench/dates_accuracy.py [--backend ort|openvino|torch] [--batch-size N]

Runs jobs/dates.toml (the 300 held-out rows of sample_data/dates/dates.csv, none of whose dates the model
was trained on) into output/dates_BACKEND and reports the share of rows whose generated_text, stripped,
equals the iso column, the share that ended on the end token, and rows per second: over the run's own time
(the model export, on the first run, and load included) and over its inference stage alone. Needs nothing
outside the repository.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import polars as pl

import batchinfer

HERE = Path(__file__).resolve().parent
JOB = HERE.parent / "jobs" / "dates.toml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="ort", choices=["ort", "openvino", "torch"])
    parser.add_argument("--batch-size", type=int, default=None, help="batching.batch_size (default: the job's)")
    args = parser.parse_args()
    out = HERE.parent / "output" / f"dates_{args.backend}"
    overrides = [f"output.path={out}", "output.mode=overwrite", f"model.backend={args.backend}"]
    if args.batch_size:
        overrides.append(f"batching.batch_size={args.batch_size}")
    started = time.perf_counter()
    result = batchinfer.run(str(JOB), overrides)
    wall = time.perf_counter() - started
    if result.exit_code != 0:
        print(f"the run exited {result.exit_code}")
        return result.exit_code
    pred = pl.read_parquet(str(out / "*.parquet"))
    right = pred["generated_text"].str.strip_chars() == pred["iso"].cast(pl.String)
    misses = pred.filter(~right).select("id", "text", "iso", "generated_text")
    print(f"dates ({args.backend}): exact match {right.mean():.4f} ({int(right.sum())}/{pred.height}); "
          f"ended on the end token {(pred['finish_reason'] == 'eos').mean():.4f}")
    t = result.timings
    stages = ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" for k, v in t.items() if k.endswith("_s"))
    print(f"{pred.height / result.seconds:.1f} rows/s over the run ({result.seconds:.1f} s, model setup "
          f"{t.get('setup', 0):.1f} s of it; {wall:.1f} s with the call); {pred.height / t['infer_s']:.1f} rows/s "
          f"in inference alone; stages: {stages}")
    for row in misses.iter_rows(named=True):
        print(f"  miss {row['id']}: {row['text']!r}: want {row['iso']}, got {row['generated_text']!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
