"""What the export cache holds, and clearing it (`batchinfer cache list|clear`)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

KINDS = {"onnx": "export.json", "openvino": "ir.json", "models": "assembled.json"}


@dataclass
class CacheEntry:
    kind: str
    path: Path
    size: int
    modified: float
    model: str

    def line(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.modified))
        return f"{self.kind:9} {self.size / 1e6:9.1f} MB  {when}  {self.model}  {self.path}"


def entries(cache_dir: Path) -> list[CacheEntry]:
    found = []
    for kind, marker in KINDS.items():
        folder = Path(cache_dir) / kind
        if not folder.is_dir():
            continue
        for item in sorted(folder.iterdir()):
            if not (item / marker).is_file():
                continue  # a temporary or half-written folder
            meta = json.loads((item / marker).read_text())
            size = sum(p.stat().st_size for p in item.rglob("*") if p.is_file())
            found.append(CacheEntry(kind, item, size, (item / marker).stat().st_mtime,
                                    str(meta.get("model") or meta.get("name") or meta.get("onnx", "?"))))
    return found


def clear(cache_dir: Path) -> int:
    """Remove every cached export, IR and assembled model; returns the bytes freed."""
    freed = 0
    for kind in KINDS:
        folder = Path(cache_dir) / kind
        if folder.is_dir():
            freed += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            shutil.rmtree(folder)
    return freed
