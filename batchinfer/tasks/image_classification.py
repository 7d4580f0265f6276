"""image-classification: the model's image processor in, top-k labels from id2label out."""

from __future__ import annotations

from typing import Any

from batchinfer.tasks.base import ImageTask
from batchinfer.tasks.text_classification import Classification, ClassificationOptions


class ImageClassification(Classification, ImageTask):
    name = "image-classification"
    auto_class = "AutoModelForImageClassification"
    output_name = "logits"
    head_suffix = "ForImageClassification"
    roles = ("image",)
    required_roles = ("image",)
    default_call_top_k = 5  # transformers' default for images
    call_options = frozenset({"batch_size", "top_k", "function_to_apply", "timeout"})

    def __init__(self, config: dict[str, Any], processor: Any, options: ClassificationOptions | None = None,
                 **kwargs: Any) -> None:
        ImageTask.__init__(self, config, processor, options, **kwargs)
        self._setup_labels(config)
