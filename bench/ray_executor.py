"""When does Ray pay off? The same job file on the local executor and on Ray (a private instance per run).

    python bench/ray_executor.py [--rows 6000] [--repeats 3] [--ray-address ADDRESS]

Runs `batchinfer run` end to end (process start, model load, Ray start-up, output commit) on SST-2 dev
sentences repeated to --rows, split into units of --batch-rows, with the sample sentiment model on ORT; then
a 10-row job, whose time is almost all fixed cost. Prints the median wall time of each, interleaved.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SST2 = HERE.parent.parent / "shared" / "data" / "sst2" / "dev.parquet"
EXE = str(Path(sys.executable).parent / "batchinfer")


def build_data(work: Path, rows: int) -> Path:
    import polars as pl

    texts = pl.read_parquet(SST2)["sentence"].to_list()
    path = work / f"sst2-{rows}.parquet"
    pl.DataFrame({"id": range(rows), "text": (texts * (rows // len(texts) + 1))[:rows]}).write_parquet(path)
    return path


def timed_run(data: Path, executor: str, batch_rows: int, extra: list[str]) -> float:
    out = Path(tempfile.mkdtemp(prefix="bench-ray-")) / "out"
    args = [EXE, "run", str(HERE.parent / "jobs" / "sentiment.toml"), "-q", "--no-progress",
            "--set", f"input.path={data}", "--set", "input.column=text", "--set", f"output.path={out}",
            "--set", "output.mode=overwrite", "--set", 'output.keep_columns=["id"]',
            "--set", f"input.batch_rows={batch_rows}", "--executor", executor,
            *extra]
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    shutil.rmtree(out.parent, ignore_errors=True)
    if proc.returncode != 0:
        raise SystemExit(f"{executor} run failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--batch-rows", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ray-address", help="a running cluster; default: a private local instance per run")
    args = parser.parse_args()
    from harness import machine

    work = HERE.parent / "output" / "bench-ray"
    work.mkdir(parents=True, exist_ok=True)
    big, small = build_data(work, args.rows), build_data(work, 10)
    extra = ["--ray-address", args.ray_address] if args.ray_address else []
    cases = [("local", big, []), ("ray", big, extra), ("local", small, []), ("ray", small, extra)]
    times: dict[tuple[str, Path], list[float]] = {(e, d): [] for e, d, _ in cases}
    timed_run(small, "local", args.batch_rows, [])  # the export cache is warm for every timed run
    for _ in range(args.repeats):
        for executor, data, more in cases:
            times[(executor, data)].append(timed_run(data, executor, args.batch_rows, more))
            print(f"  {executor} {data.name}: {times[(executor, data)][-1]:.1f} s", file=sys.stderr)
    print(f"# local vs Ray executor; {machine()}")
    print(f"| executor | rows | wall s (median of {args.repeats}) | rows/s | vs local |")
    print("|---|---|---|---|---|")
    for data, rows in ((big, args.rows), (small, 10)):
        local = statistics.median(times[("local", data)])
        for executor in ("local", "ray"):
            wall = statistics.median(times[(executor, data)])
            print(f"| {executor} | {rows:,} | {wall:.1f} | {rows / wall:.1f} | {local / wall:.2f}x |")


if __name__ == "__main__":
    main()
