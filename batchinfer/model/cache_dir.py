"""The export cache: where it is, and every kind of artifact built into it (what `batchinfer cache` lists).

Each builder names its cache sub-folder and marker through its `Artifact` here, so that a new kind of artifact
cannot be built without `cache list` and `cache clear` knowing it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_cache_dir() -> Path:
    """$BATCHINFER_CACHE, else $XDG_CACHE_HOME/batchinfer, else ~/.cache/batchinfer."""
    env = os.environ.get("BATCHINFER_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "batchinfer"


@dataclass(frozen=True)
class Artifact:
    """One kind of cached artifact: its sub-folder of the cache, the marker file its builder writes last, and
    its kind in `cache list`. `where`: marker fields that tell this kind from another with the same marker."""

    folder: str
    marker: str
    kind: str
    where: dict[str, str] = field(default_factory=dict, hash=False)

    def matches(self, meta: dict) -> bool:
        return all(meta.get(key) == value for key, value in self.where.items())


ONNX = Artifact("onnx", "export.json", "onnx")  # onnx_export.py
ONNX_INT8 = Artifact("onnx", "quantized.json", "onnx-int8")  # quantize.py (ORT dynamic int8)
OPENVINO = Artifact("openvino", "ir.json", "openvino", {"quantize": "none"})  # openvino_ir.py
OPENVINO_INT8 = Artifact("openvino", "ir.json", "openvino-int8", {"quantize": "int8-weights"})  # NNCF weights
MODELS = Artifact("models", "assembled.json", "models")  # samples/ (assembled sample models)
TOKENIZERS = Artifact("tokenizers", "snapshot.json", "tokenizer")  # tokenizer.py (read without transformers)
HASHES = Artifact("hashes", "hash.json", "model-hash")  # hash_memo.py (a folder's content hash, per listing)
ARTIFACTS = (ONNX, ONNX_INT8, OPENVINO, OPENVINO_INT8, MODELS, TOKENIZERS, HASHES)
