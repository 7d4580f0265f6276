"""image-feature-extraction: one embedding per image (ViT, DINOv2, ConvNeXt, CLIP's image tower).

`pooling = "auto"` takes what the model offers as its image embedding: CLIP's projected `image_embeds` (the
space its text tower embeds captions into), else the model's `pooler_output` (what transformers' pipeline
gives with `pool=True`: DINOv2's normalised CLS token, ViT's pooler), else the CLS token. `cls` and `mean`
pool the last hidden state instead (its first token; the mean of its tokens).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Head, ImageTask
from batchinfer.tasks.feature_extraction import EmbeddingColumn, EmbeddingOptions

CLIP_TYPES = frozenset({"clip", "clip_vision_model"})


class ImageEmbeddingOptions(EmbeddingOptions):
    pooling: Literal["auto", "pooler", "cls", "mean"] = Field(
        "auto", description="auto: CLIP's image_embeds, else the model's pooler output, else the CLS token")


class ImageFeatureExtraction(EmbeddingColumn, ImageTask):
    name = "image-feature-extraction"
    auto_class = "AutoModel"
    output_name = "last_hidden_state"
    extra_outputs = ("pooler_output",)
    sequence_output = True
    roles = ("image",)
    required_roles = ("image",)
    Options = ImageEmbeddingOptions
    call_options = frozenset({"batch_size", "pool", "timeout", "image_processor_kwargs", "return_tensors"})

    def __init__(self, config: dict[str, Any], processor: Any, options: ImageEmbeddingOptions | None = None,
                 **kwargs: Any) -> None:
        super().__init__(config, processor, options, **kwargs)
        self.clip = config.get("model_type") in CLIP_TYPES
        if self.clip and self.options.pooling != "auto":
            raise ModelError(f"pooling = {self.options.pooling!r}: a CLIP model's image embedding is its "
                             "projected image_embeds", hint="use pooling = 'auto' with CLIP models")
        self.dim = _embedding_size(config, self.clip)

    @classmethod
    def head(cls, config: dict[str, Any]) -> Head:
        if config.get("model_type") in CLIP_TYPES:  # the image tower with its projection
            return Head("CLIPVisionModelWithProjection", "image_embeds")
        return super().head(config)

    def postprocess(self, outputs, inputs):
        return self.embedding(self._pooled(outputs))

    def _pooled(self, outputs) -> np.ndarray:
        if "image_embeds" in outputs:
            return outputs["image_embeds"]
        pooling = self.options.pooling
        if pooling in ("auto", "pooler") and "pooler_output" in outputs:
            return outputs["pooler_output"].reshape(len(outputs["pooler_output"]), -1)
        if pooling == "pooler":
            raise ModelError("pooling = 'pooler': this model has no pooler output", hint="use pooling = 'cls' or 'mean'")
        hidden = outputs["last_hidden_state"]
        if hidden.ndim != 3:
            raise ModelError(f"pooling = {pooling!r} needs token vectors; this model's last hidden state has shape "
                             f"{hidden.shape[1:]}", hint="use pooling = 'auto' (its pooler output)")
        return hidden[:, 0] if pooling in ("auto", "cls") else hidden.mean(axis=1)

    def transformers_rows(self, outputs, inputs, values, call):
        """transformers: the model's first output (pool=True: its pooler output), as nested lists per image."""
        if call.get("pool"):
            if "pooler_output" not in outputs:
                raise ValueError("No pooled output was returned. Make sure the model has a `pooler` layer when using "
                                 "the `pool` option.")
            chosen = outputs["pooler_output"]
        else:
            chosen = outputs["image_embeds" if "image_embeds" in outputs else "last_hidden_state"]
        return [[row.tolist()] for row in chosen]


def _embedding_size(config: dict[str, Any], clip: bool) -> int:
    """The embedding's size from the model's config (CLIP: its projection)."""
    if clip:
        return int(config.get("projection_dim") or 512)
    sizes = config.get("hidden_sizes")
    return int(sizes[-1]) if sizes else int(config.get("hidden_size") or 0)
