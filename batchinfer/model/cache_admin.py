"""What the export cache holds, and clearing it (`batchinfer cache list|clear`)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from batchinfer.model.cache_dir import ARTIFACTS, Artifact
from batchinfer.model.cache_folder import builder, is_stale_temp, temporaries

FOLDERS = tuple(dict.fromkeys(a.folder for a in ARTIFACTS))  # the cache's sub-folders, in listing order
WIDTH = max(len(kind) for kind in [a.kind for a in ARTIFACTS] + ["temporary"])


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
        return f"{self.kind:{WIDTH}} {self.size / 1e6:9.1f} MB  {when}  {self.model}  {self.path}"


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


def _read(marker: Path) -> dict:
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _built(item: Path, kinds: list[Artifact]) -> CacheEntry | None:
    """The artifact built in folder `item` (the first kind whose marker is there and fits), or None."""
    present = [a for a in kinds if (item / a.marker).is_file()]
    if not present:
        return None
    meta = _read(item / present[0].marker)
    kind = next((a for a in present if a.matches(meta)), present[0]).kind
    return CacheEntry(kind, item, _size(item), _mtime(item / present[0].marker),
                      str(meta.get("model") or meta.get("name") or meta.get("onnx", "?")))


def entries(cache_dir: Path) -> list[CacheEntry]:
    """Every built artifact, then every temporary or half-written folder (a build running or killed)."""
    found = []
    for folder_name in FOLDERS:
        folder = Path(cache_dir) / folder_name
        if not folder.is_dir():
            continue
        kinds = [a for a in ARTIFACTS if a.folder == folder_name]
        temps = temporaries(folder)
        for item in sorted(p for p in folder.iterdir() if p.is_dir() and p not in temps):
            entry = _built(item, kinds)
            found.append(entry or CacheEntry("temporary", item, _size(item), _mtime(item), "incomplete (never used)"))
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
    for folder_name in FOLDERS:
        try:
            (Path(cache_dir) / folder_name).rmdir()  # only once empty
        except OSError:
            pass
    return freed
