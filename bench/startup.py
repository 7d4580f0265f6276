"""Start-up: what a scheduled job over a small partition pays before and around its few rows.

Each measurement is a fresh process, interleaved over the repeats, median reported: `python -c pass` (the
interpreter alone), `import batchinfer`, `batchinfer --help`, and a 10-row job of the sample sentiment model
whose export is cached (a warm-up run fills the cache first), for each backend asked. `--baseline PATH` runs
the same with another checkout of batchinfer first on PYTHONPATH (e.g. a `git worktree` of an older commit),
side by side in the same run. The job rows also report the -v breakdown (median seconds per set-up phase).

    python bench/startup.py --repeats 7 [--backends ort,openvino] [--baseline ../old-checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("imports_s", "job_file_s", "check_s", "resolve_s", "tokenizer_s", "session_s", "gate_s", "first_batch_s",
          "total")


def job_file(folder: Path, backend: str) -> Path:
    import pyarrow.parquet as pq

    pq.write_table(pq.read_table(ROOT / "sample_data" / "reviews.parquet").slice(0, 10), folder / "ten.parquet")
    path = folder / f"ten-{backend}.toml"
    path.write_text(f"""
[input]
path = "{folder / 'ten.parquet'}"
column = "text"

[model]
name = "sample:sentiment-minilm"
task = "text-classification"
backend = "{backend}"

[output]
path = "{folder / ('out-' + backend)}"
mode = "overwrite"
""")
    return path


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backends", default="ort")
    parser.add_argument("--baseline", type=Path, help="another checkout of batchinfer, run side by side")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    py = sys.executable
    cli = [py, "-m", "batchinfer.cli"]
    versions = {"ours": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    envs = {name: {**os.environ, "PYTHONPATH": str(path)} for name, path in versions.items()}
    for name, env in envs.items():
        where = subprocess.run([py, "-c", "import batchinfer; print(batchinfer.__file__)"], env=env, cwd=folder,
                               check=True, capture_output=True, text=True).stdout.strip()
        print(f"{name}: {where}", file=sys.stderr)
    rows: dict[str, list[str]] = {"python -c pass": [py, "-c", "pass"]}
    rows |= {f"{name}: import batchinfer": [py, "-c", "import batchinfer"] for name in envs}
    rows |= {f"{name}: batchinfer --help": [*cli, "--help"] for name in envs}
    jobs = {backend: job_file(folder, backend) for backend in args.backends.split(",")}
    for name, env in envs.items():
        for backend, path in jobs.items():
            subprocess.run([*cli, "run", str(path), "-q"], env=env, cwd=folder, check=True)  # warm-up: the export
            rows[f"{name}: 10-row job, {backend}"] = [*cli, "run", str(path), "-q"]
    seconds: dict[str, list[float]] = {row: [] for row in rows}
    phases: dict[str, list[dict]] = {row: [] for row in rows if "job" in row}
    for _ in range(args.repeats):
        for row, command in rows.items():
            env = envs.get(row.split(":")[0], envs["ours"])
            seconds[row].append(timed(command, env, folder))  # (not from the checkout: '' leads sys.path)
            if row in phases:
                summary = folder / "summary.json"
                subprocess.run([*command, "--summary-json", str(summary)], env=env, cwd=folder, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                phases[row].append(json.loads(summary.read_text())["timings"])
    base = statistics.median(seconds["python -c pass"])
    print(f"| command | wall s (median of {args.repeats}) | over `python -c pass` |")
    print("|---|---|---|")
    for row, values in seconds.items():
        wall = statistics.median(values)
        print(f"| {row} | {wall:.3f} | {wall - base:+.3f} |")
    print()
    print("| job | " + " | ".join(PHASES) + " |")
    print("|---|" + "---|" * len(PHASES))
    for row, runs in phases.items():
        cells = [f"{statistics.median(r.get(k, 0.0) for r in runs):.3f}" for k in PHASES]
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
