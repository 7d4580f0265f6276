"""Models and the export cache: resolving names, fingerprints, exports, IR, quantized artifacts, sample models.

Imports nothing from `batchinfer.backends`; torch, onnx, onnxruntime and openvino are imported only inside the
functions that need them.
"""

from __future__ import annotations

from batchinfer.model.cache_dir import default_cache_dir
from batchinfer.model.graph import ModelGraph
from batchinfer.model.ref import ModelRef, read_config, resolve_model

__all__ = ["ModelGraph", "ModelRef", "default_cache_dir", "read_config", "resolve_model"]
