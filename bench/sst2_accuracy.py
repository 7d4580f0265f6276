"""Accuracy of the sample sentiment model on SST-2 dev, measured through `batchinfer run` (ORT backend).

    python bench/sst2_accuracy.py [--backend ort|torch]

Runs bench/sst2_dev.toml with the real CLI, then compares the predicted labels with the gold labels.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="ort", choices=["ort", "torch"])
    args = parser.parse_args()
    job = HERE / "sst2_dev.toml"
    data = (HERE / "../../shared/data/sst2/dev.parquet").resolve()  # bench/sst2_dev.toml's input.path
    if not data.exists():
        print(f"sst2_accuracy.py: the SST-2 dev set is missing: {data} does not exist.\n"
              "  It is GLUE SST-2's validation split (872 rows, columns idx, sentence, label, label_text), kept\n"
              "  outside the repository (in a 'shared/data/sst2/' folder beside the checkout). Put dev.parquet\n"
              "  there, or point input.path in bench/sst2_dev.toml at your copy.", file=sys.stderr)
        return 2
    out = HERE.parent / "output" / f"sst2_dev_{args.backend}"
    cmd = [sys.executable, "-m", "batchinfer.cli", "run", str(job), "--set", f"model.backend={args.backend}",
           "--set", f"output.path={out}"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    pred = pl.read_parquet(str(out / "*.parquet"))
    gold = pred["label_text"].str.to_uppercase()
    accuracy = (pred["predicted"] == gold).mean()
    print(f"SST-2 dev accuracy ({args.backend}): {accuracy:.4f} on {pred.height} sentences")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
