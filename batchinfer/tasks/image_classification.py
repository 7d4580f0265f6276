"""image-classification: the model's image processor in, top-k labels from id2label out."""

from __future__ import annotations

from typing import Any

from batchinfer.tasks.base import ImageTask
from batchinfer.tasks.text_classification import Classification


class ImageClassification(Classification, ImageTask):
    name = "image-classification"
    auto_class = "AutoModelForImageClassification"
    output_name = "logits"
    head_suffix = "ForImageClassification"

    def __init__(self, config: dict[str, Any], processor: Any, *, top_k: int = 1,
                 function_to_apply: str = "default", **_: Any) -> None:
        ImageTask.__init__(self, config, processor)
        self._setup_labels(config, top_k, function_to_apply)
