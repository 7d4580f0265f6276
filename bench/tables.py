"""What a table output costs against a Parquet folder: the same job (the sample sentiment model on ORT over
SST-2 dev sentences repeated to --rows, an `id` and a `day` column added), end to end, each row in its own
process, into a fresh Parquet folder, partitioned Parquet folder, Delta table (plain and partitioned by day),
Iceberg table (SQL catalog on SQLite) and Lance dataset. Agreement: the share of labels, read back from each
output in id order, equal to the Parquet folder's.

    python bench/tables.py --rows 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from harness import machine, table  # noqa: E402

SST2 = HERE.parent.parent / "shared" / "data" / "sst2" / "dev.parquet"
ROWS = {"parquet folder": {}, "parquet partitioned": {"partition_by": ["day"]}, "delta": {"format": "delta"},
        "delta partitioned": {"format": "delta", "partition_by": ["day"]}, "iceberg": {"format": "iceberg"},
        "lance": {"format": "lance"}}


def make_data(rows: int, path: Path) -> None:
    texts = pl.read_parquet(SST2)["sentence"]
    frame = pl.DataFrame({"text": [texts[i % len(texts)] for i in range(rows)]})
    frame.with_row_index("id").with_columns(day=pl.format("2026-12-{}", (pl.col("id") % 7 + 1).cast(pl.String)
                                                          .str.zfill(2))).write_parquet(path)


def child(row: str, data: Path) -> dict:
    import batchinfer

    work = Path(tempfile.mkdtemp(prefix="bench-tables-"))
    output = {"path": str(work / "out"), "keep_columns": ["id", "day"], **ROWS[row]}
    if row == "iceberg":
        (work / "warehouse").mkdir()
        output.update(table="bench.scores", catalog={"name": "bench", "type": "sql", "uri": f"sqlite:///{work / 'cat.db'}",
                                                     "warehouse": f"file://{work / 'warehouse'}"})
    started = time.perf_counter()
    result = batchinfer.run({"input": {"path": str(data), "column": "text"},
                             "model": {"name": "sample:sentiment-minilm", "task": "text-classification"},
                             "output": output, "runtime": {"progress": "never"}})
    seconds = time.perf_counter() - started
    labels = read_labels(row, output)
    shutil.rmtree(work, ignore_errors=True)
    return {"rows": result.rows, "seconds": seconds, "labels": labels}


def read_labels(row: str, output: dict) -> list[str]:
    path = output["path"]
    if row.startswith("delta"):
        frame = pl.read_delta(path)
    elif row == "lance":
        import lance

        frame = pl.scan_pyarrow_dataset(lance.dataset(path)).collect()
    elif row == "iceberg":
        from pyiceberg.catalog import load_catalog

        props = dict(output["catalog"])
        frame = pl.from_arrow(load_catalog(props.pop("name"), **props).load_table(output["table"]).scan().to_arrow())
    elif row == "parquet partitioned":
        frame = pl.read_parquet(f"{path}/**/*.parquet", hive_partitioning=True)
    else:
        frame = pl.read_parquet(f"{path}/*.parquet")
    return frame.sort("id")["label"].to_list()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--row")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.row:
        print(json.dumps(child(args.row, Path(args.data))))
        return
    if not SST2.exists():
        raise SystemExit(f"{SST2} is missing: the SST-2 dev sentences are read from shared/data/ beside the checkout")
    data = Path(tempfile.mkdtemp(prefix="bench-tables-data-")) / "sst2.parquet"
    make_data(args.rows, data)
    print(machine())
    print(table(Path(__file__), list(ROWS), ["--data", str(data)], repeats=args.repeats,
                reference="parquet folder"))


if __name__ == "__main__":
    main()
