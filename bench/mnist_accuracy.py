"""Accuracy of the sample digits model on real handwritten MNIST digits (3 vs 7), through `batchinfer run`.

    python bench/mnist_accuracy.py [--backend ort|openvino|torch]

Runs the digits job over ../shared/data/mnist_tiny (the rows with a label, all 3s and 7s) and reports the
accuracy of the top label over all ten classes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
MNIST = HERE.parent.parent / "shared" / "data" / "mnist_tiny" / "mnist_tiny.parquet"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="ort", choices=["ort", "openvino", "torch"])
    args = parser.parse_args()
    out = HERE.parent / "output" / f"mnist_{args.backend}"
    cmd = [sys.executable, "-m", "batchinfer.cli", "run", str(HERE.parent / "jobs" / "digits.toml"),
           "--set", f"input.path={MNIST}", "--set", f"output.path={out}", "--set", f"model.backend={args.backend}",
           "--set", "output.keep_columns=['split', 'label']"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    pred = pl.read_parquet(str(out / "*.parquet")).filter(pl.col("label").is_not_null())
    accuracy = (pred["predicted"] == pred["label"].cast(pl.String)).mean()
    print(f"MNIST 3 vs 7 ({args.backend}): {accuracy:.4f} top-1 over 10 classes on {pred.height} digits")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
