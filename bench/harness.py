"""Shared benchmark plumbing: run each row in its own process, take medians, print one table.

Every row is a child process (`python BENCH --row NAME --data PATH --model PATH`) that prints one JSON line
{"rows": N, "seconds": S, "labels": [...]}; the parent adds the child's peak RSS and computes, per row, the
median rows/s over the repeats, the ratio to the first row, and the label agreement with the reference row.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run_child(script: Path, row: str, args: list[str]) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script), "--row", row, *args], stdout=subprocess.PIPE,
                            text=True)
    out = proc.stdout.read()  # before waiting: a large result would fill the pipe and block the child
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"row {row} failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    result["wall"] = time.perf_counter() - started
    return result


def table(script: Path, rows: list[str], args: list[str], *, repeats: int, reference: str) -> str:
    results: dict[str, list[dict]] = {row: [] for row in rows}
    for _ in range(repeats):  # interleaved, so drift in the machine's speed hits every row alike
        for row in rows:
            results[row].append(run_child(script, row, args))
            last = results[row][-1]
            print(f"  {row}: {last['rows'] / last['seconds']:.1f} rows/s", file=sys.stderr)
    ref_labels = results[reference][0].get("labels")
    lines = [f"| row | rows/s (median of {repeats}) | ratio to first row | peak RSS MB | agreement with {reference} |",
             "|---|---|---|---|---|"]
    first = None
    for row in rows:
        if any("refused" in r for r in results[row]):
            lines.append(f"| {row} | refused: {results[row][0]['refused'][:90]} | | | |")
            continue
        rate = statistics.median(r["rows"] / r["seconds"] for r in results[row])
        first = first or rate
        rss = statistics.median(r["peak_rss_mb"] for r in results[row])
        labels = results[row][0].get("labels")
        agree = (sum(a == b for a, b in zip(labels, ref_labels)) / len(ref_labels)) if labels and ref_labels else None
        lines.append(f"| {row} | {rate:.1f} | {rate / first:.2f}x | {rss:.0f} | "
                     f"{'n/a' if agree is None else f'{agree:.2%}'} |")
    return "\n".join(lines)


def machine() -> str:
    import importlib.metadata as md

    versions = []
    for package in ("torch", "transformers", "onnxruntime", "openvino", "pyarrow"):
        try:
            versions.append(f"{package} {md.version(package)}")
        except md.PackageNotFoundError:
            pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; " + ", ".join(versions)
