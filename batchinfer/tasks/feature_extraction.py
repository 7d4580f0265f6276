"""feature-extraction: sentence embeddings by mean pooling over the attention mask, optionally L2-normalised.

A CLIP folder embeds texts with its text tower and projection (`text_embeds`), into the space its image tower
embeds images into (image-feature-extraction on the same folder)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Head, Task, TaskOptions, row_cosines


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = mask.astype(hidden.dtype)[:, :, None]
    summed = (hidden * weights).sum(axis=1)
    return summed / np.clip(weights.sum(axis=1), 1e-9, None)


CLIP_TYPES = frozenset({"clip", "clip_text_model"})


class EmbeddingOptions(TaskOptions):
    normalize: bool = Field(False, description="L2-normalise each embedding (cosine = dot product)")


class EmbeddingColumn:
    """The embedding tasks' column: `fixed_size_list<float32>[self.dim]`, L2-normalised with the `normalize`
    option; two runs are compared by the mean cosine of their embeddings."""

    columns = ("embedding",)
    agreement = "cosine"
    dim: int
    options: EmbeddingOptions

    def embedding(self, emb: np.ndarray) -> dict[str, np.ndarray]:
        """The column's results from one batch's pooled embeddings."""
        emb = emb.astype(np.float32, copy=False)
        if self.options.normalize:
            emb = emb / np.clip(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12, None)
        return {"embedding": emb.astype(np.float32, copy=False)}

    def output_schema(self) -> pa.Schema:
        return pa.schema([("embedding", pa.list_(pa.float32(), self.dim))])

    def to_arrow(self, results):
        emb = np.ascontiguousarray(results["embedding"], dtype=np.float32)
        if emb.shape[1:] != (self.dim,):
            raise ModelError(f"the model's embeddings have {emb.shape[1:]} values, not the {self.dim} its config "
                             "states")
        return {"embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), self.dim)}

    def comparable(self, outputs, inputs):
        return self.postprocess(outputs, inputs)["embedding"]

    def compare(self, got, want):
        a, b = (np.asarray(x["embedding"].to_pylist(), dtype=np.float32) for x in (got, want))
        return (float(row_cosines(a, b).mean()) if len(a) else 1.0), "mean embedding cosine"


class FeatureExtraction(EmbeddingColumn, Task):
    name = "feature-extraction"
    auto_class = "AutoModel"
    output_name = "last_hidden_state"
    sequence_output = True
    encodes_once = True
    lean_tokenizer = True
    Options = EmbeddingOptions
    shortcut = "embed"
    call_options = frozenset({"batch_size", "truncation", "max_length", "padding", "tokenize_kwargs"})
    keeps_call_batches = True  # transformers pads each input's token vectors to the longest of its batch

    def __init__(self, config: dict[str, Any], tokenizer: Any, options: EmbeddingOptions | None = None,
                 **kwargs: Any) -> None:
        super().__init__(config, tokenizer, options, **kwargs)
        self.clip = config.get("model_type") in CLIP_TYPES
        self.dim = int((config.get("projection_dim") if self.clip else None) or config.get("hidden_size")
                       or config.get("d_model") or 0)

    @classmethod
    def head(cls, config: dict[str, Any]) -> Head:
        if config.get("model_type") in CLIP_TYPES:  # the text tower with its projection
            return Head("CLIPTextModelWithProjection", "text_embeds")
        return super().head(config)

    def postprocess(self, outputs, inputs):
        if "text_embeds" in outputs:
            emb = outputs["text_embeds"].astype(np.float32, copy=False)
        else:
            emb = mean_pool(outputs["last_hidden_state"].astype(np.float32, copy=False), inputs["attention_mask"])
        return self.embedding(emb)

    def transformers_rows(self, outputs, inputs, values, call):
        """transformers returns each input's token vectors (padded to its batch's longest), not a pooled one."""
        if "text_embeds" in outputs:  # a CLIP text tower: its projected embedding
            return [[row.tolist()] for row in outputs["text_embeds"]]
        return [[hidden.tolist()] for hidden in outputs["last_hidden_state"]]
