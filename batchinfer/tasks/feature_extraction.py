"""feature-extraction: sentence embeddings by mean pooling over the attention mask, optionally L2-normalised."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from batchinfer.tasks.base import Task


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask.astype(hidden.dtype)[:, :, None]
    summed = (hidden * weights).sum(axis=1)
    return summed / np.clip(weights.sum(axis=1), 1e-9, None)


class FeatureExtraction(Task):
    name = "feature-extraction"
    auto_class = "AutoModel"
    output_name = "last_hidden_state"
    sequence_output = True
    encodes_once = True

    def __init__(self, config: dict[str, Any], tokenizer: Any, *, max_length: int | None = None,
                 normalize: bool = False) -> None:
        super().__init__(config, tokenizer, max_length=max_length)
        self.normalize = normalize
        self.dim = int(config.get("hidden_size") or config.get("d_model") or 0)

    def postprocess(self, outputs, inputs):
        emb = mean_pool(outputs["last_hidden_state"].astype(np.float32, copy=False), inputs["attention_mask"])
        if self.normalize:
            emb = emb / np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)
        return {"embedding": emb.astype(np.float32, copy=False)}

    def output_schema(self) -> pa.Schema:
        return pa.schema([("embedding", pa.list_(pa.float32(), self.dim))])

    def to_arrow(self, results):
        emb = np.ascontiguousarray(results["embedding"], dtype=np.float32)
        return {"embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), self.dim)}
