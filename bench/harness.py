"""Shared benchmark plumbing: run each row in its own process, take medians, print one table.

Every row is a child process (`python BENCH --row NAME --data PATH --model PATH`) that prints one JSON line
{"rows": N, "seconds": S, "labels": [...]} (or "vectors": [[...], ...] for embeddings); the parent adds the
child's peak RSS and computes, per row, the median rows/s over the repeats, the ratio to the first row, and the
agreement with the reference row: the share of equal labels, or the mean cosine of the vectors. A row may run
under another Python (`pythons`: a reference that needs its own environment). Given the model's FLOPs per row
and the machine's measured matmul peak (`matmul_peak`), the table adds each row's share of that peak.
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


def run_child(script: Path, row: str, args: list[str], python: str | None = None) -> dict:
    started = time.perf_counter()
    proc = subprocess.Popen([python or sys.executable, str(script), "--row", row, *args], stdout=subprocess.PIPE,
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


def matmul_peak(size: int = 2048, repeats: int = 7) -> float:
    """The machine's fp32 GEMM rate in GFLOP/s: the best of `repeats` numpy size x size matmuls."""
    import numpy as np

    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    a @ a  # warm: threads started, pages touched
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        a @ a
        best = max(best, 2 * size**3 / (time.perf_counter() - started))
    return best / 1e9


def per_token_weights(model: Path) -> int:
    """Weights every token goes through: the encoder layers' (embeddings, pooler and head left out; attention's
    own FLOPs, which grow with the length, are not counted, so the share of peak is a lower bound)."""
    import numpy as np
    from safetensors import safe_open

    total = 0
    with safe_open(str(model / "model.safetensors"), "np") as weights:
        for key in weights.keys():
            if ".layer." in key and "embeddings" not in key:
                total += int(np.prod(weights.get_slice(key).get_shape()))
    return total


def table(script: Path, rows: list[str], args: list[str], *, repeats: int, reference: str,
          pythons: dict[str, str] | None = None, flops_per_row: float | None = None,
          peak_gflops: float | None = None) -> str:
    results: dict[str, list[dict]] = {row: [] for row in rows}
    for _ in range(repeats):  # interleaved, so drift in the machine's speed hits every row alike
        for row in rows:
            results[row].append(run_child(script, row, args, (pythons or {}).get(row)))
            last = results[row][-1]
            print(f"  {row}: {last['rows'] / last['seconds']:.1f} rows/s", file=sys.stderr)
    share = flops_per_row is not None and peak_gflops is not None
    lines = [f"| row | rows/s (median of {repeats}) | ratio to first row | peak RSS MB | agreement with {reference} |"
             + (f" share of fp32 peak ({peak_gflops:.0f} GFLOP/s) |" if share else ""),
             "|---|---|---|---|---|" + ("---|" if share else "")]
    first = None
    for row in rows:
        if any("refused" in r for r in results[row]):
            lines.append(f"| {row} | refused: {results[row][0]['refused'][:90]} | | | |" + (" |" if share else ""))
            continue
        rate = statistics.median(r["rows"] / r["seconds"] for r in results[row])
        first = first or rate
        rss = statistics.median(r["peak_rss_mb"] for r in results[row])
        lines.append(f"| {row} | {rate:.1f} | {rate / first:.2f}x | {rss:.0f} | "
                     f"{_agreement(results[row][0], results[reference][0])} |"
                     + (f" {rate * flops_per_row / 1e9 / peak_gflops:.0%} |" if share else ""))
    return "\n".join(lines)


def _agreement(got: dict, want: dict) -> str:
    """The share of labels equal to the reference's, or the mean cosine of the vectors (n/a without either)."""
    if got.get("vectors") and want.get("vectors"):
        import numpy as np

        a, b = np.asarray(got["vectors"], np.float64), np.asarray(want["vectors"], np.float64)
        cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
        return f"cosine {cos.mean():.6f}"
    labels, ref = got.get("labels"), want.get("labels")
    return f"{sum(a == b for a, b in zip(labels, ref)) / len(ref):.2%}" if labels and ref else "n/a"


def machine() -> str:
    import importlib.metadata as md

    versions = []
    for package in ("torch", "transformers", "onnxruntime", "openvino", "pyarrow"):
        try:
            versions.append(f"{package} {md.version(package)}")
        except md.PackageNotFoundError:
            pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; " + ", ".join(versions)
