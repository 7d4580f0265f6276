"""What the export cache holds, and clearing it (`batchinfer cache list|clear`)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from batchinfer.cache_folder import builder, is_stale_temp, temporaries

# folder -> {marker: kind}: every artifact the cache builds (export.py, backends/openvino.py, sample_models/)
KINDS = {"onnx": {"export.json": "onnx", "quantized.json": "onnx-int8"},
         "openvino": {"ir.json": "openvino"},
         "models": {"assembled.json": "models"}}


@dataclass
class CacheEntry:
    kind: str
    path: Path
    size: int
    modified: float
    model: str
    removable: bool = True  # False for a temporary folder a running build is writing

    def line(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.modified))
        return f"{self.kind:9} {self.size / 1e6:9.1f} MB  {when}  {self.model}  {self.path}"


def _size(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        try:
            total += p.stat().st_size if p.is_file() else 0
        except OSError:
            pass  # removed meanwhile
    return total


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def entries(cache_dir: Path) -> list[CacheEntry]:
    """Every built artifact, then every temporary or half-written folder (a build running or killed)."""
    found = []
    for folder_name, markers in KINDS.items():
        folder = Path(cache_dir) / folder_name
        if not folder.is_dir():
            continue
        temps = temporaries(folder)
        for item in sorted(p for p in folder.iterdir() if p.is_dir() and p not in temps):
            marker = next((m for m in markers if (item / m).is_file()), None)
            if marker is None:
                found.append(CacheEntry("temporary", item, _size(item), _mtime(item), "incomplete (never used)"))
                continue
            try:
                meta = json.loads((item / marker).read_text())
            except (OSError, ValueError):
                meta = {}
            found.append(CacheEntry(markers[marker], item, _size(item), _mtime(item / marker),
                                    str(meta.get("model") or meta.get("name") or meta.get("onnx", "?"))))
        for temp in temps:
            stale = is_stale_temp(temp)
            pid = None if stale else builder(temp)
            found.append(CacheEntry("temporary", temp, _size(temp), _mtime(temp),
                                    "stale (its build was killed)" if stale else
                                    f"in use (pid {pid} is building it)" if pid else "in use (a build elsewhere)",
                                    removable=stale))
    return found


def clear(cache_dir: Path, chosen: list[CacheEntry] | None = None) -> int:
    """Remove `chosen` (default: every cached artifact and stale temporary, never a temporary in use); returns
    the bytes freed."""
    freed = 0
    for entry in entries(cache_dir) if chosen is None else chosen:
        if entry.removable and entry.path.exists():
            freed += _size(entry.path)
            shutil.rmtree(entry.path, ignore_errors=True)
    for folder_name in KINDS:
        try:
            (Path(cache_dir) / folder_name).rmdir()  # only once empty
        except OSError:
            pass
    return freed
