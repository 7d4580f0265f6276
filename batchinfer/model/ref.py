"""Resolve a model name (local folder, `sample:NAME`, `package:MODULE/SUBDIR`, or hub id) to a local folder and fingerprint it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from batchinfer.errors import ModelError
from batchinfer.model.cache_dir import default_cache_dir
from batchinfer.model.folders import model_folder
from batchinfer.model.hash_memo import folder_hash


@dataclass(frozen=True)
class ModelRef:
    """A model as a local folder, with a content hash of every file that changes its behaviour."""

    name: str
    path: Path
    revision: str | None = None
    content_hash: str = field(default="", compare=False)


def resolve_model(name: str, revision: str | None = None, *, cache_dir: Path | None = None) -> ModelRef:
    """Find the model's local folder: `sample:NAME`, `package:MODULE/SUBDIR`, a local folder, or a hub id."""
    cache_dir = cache_dir or default_cache_dir()
    if name.startswith("sample:"):
        from batchinfer.model.samples import assemble

        path = assemble(name.removeprefix("sample:"), cache_dir)
    else:
        path = model_folder(name, revision)
    return ModelRef(name=name, path=path, revision=revision, content_hash=folder_hash(path, cache_dir))


def read_config(ref: ModelRef) -> dict:
    try:
        return json.loads((ref.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"model folder {ref.path}: config.json cannot be read: {exc}") from None
