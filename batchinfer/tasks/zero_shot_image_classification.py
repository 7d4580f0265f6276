"""zero-shot-image-classification (CLIP-style): each image against a text prompt per candidate label.

The model runs whole, as transformers' pipeline runs it: a batch of images and the prompts of every label
(`hypothesis_template` filled with each label) in, `logits_per_image` (images x labels) out; scores are a
softmax over the labels (a sigmoid for SigLIP, as transformers), best first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from batchinfer.errors import ModelError
from batchinfer.tasks.base import ImageTask
from batchinfer.tasks.text_classification import sigmoid, softmax
from batchinfer.tasks.zero_shot import CandidateLabelOptions, RankedLabels


class ZeroShotImageOptions(CandidateLabelOptions):
    task_name = "zero-shot-image-classification"
    label_example = "['cat', 'dog']"
    hypothesis_template: str = "This is a photo of {}."


class ZeroShotImageClassification(RankedLabels, ImageTask):
    name = "zero-shot-image-classification"
    auto_class = "AutoModelForZeroShotImageClassification"
    output_name = "logits_per_image"
    roles = ("image",)
    required_roles = ("image",)
    text_inputs = True
    Options = ZeroShotImageOptions
    columns = ("labels", "scores")
    call_options = frozenset({"batch_size", "candidate_labels", "hypothesis_template", "timeout",
                              "tokenizer_kwargs"})

    def __init__(self, config: dict[str, Any], processor: Any, options: ZeroShotImageOptions | None = None,
                 **kwargs: Any) -> None:
        super().__init__(config, processor, options, **kwargs)
        self.labels = list(self.options.candidate_labels)
        self.siglip = config.get("model_type") in ("siglip", "siglip2")
        prompts = [self.options.hypothesis_template.format(label) for label in self.labels]
        if self.tokenizer is not None:  # the prompts, once: every batch takes the same
            padding = "max_length" if self.siglip else True
            enc = self.tokenizer(prompts, padding=padding, return_tensors="np")
            self.prompts = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()
                            if k in self.tokenizer.model_input_names}

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        if not (config.get("text_config") and config.get("vision_config")):  # both towers
            raise ModelError(f"model {model_name} is not an image-text model (CLIP, SigLIP)",
                             hint="zero-shot-image-classification needs a model with an image and a text tower")

    @classmethod
    def probe_options(cls) -> ZeroShotImageOptions:
        return ZeroShotImageOptions(candidate_labels=["a cat", "a dog"])

    def preprocess(self, images: list[Any]) -> dict[str, np.ndarray]:
        return {**super().preprocess(images), **self.prompts}

    def postprocess(self, outputs, inputs):
        logits = outputs["logits_per_image"].astype(np.float32, copy=False)
        scores = sigmoid(logits) if self.siglip else softmax(logits)
        order = np.argsort(-scores, axis=1, kind="stable")
        return {"labels": order, "scores": np.take_along_axis(scores, order, axis=1)}

    def transformers_rows(self, outputs, inputs, values, call):
        """transformers: per image, [{"score", "label"}] over every label, best first."""
        results = self.postprocess(outputs, inputs)
        return [[{"score": float(s), "label": self.labels[i]} for i, s in zip(ids, scores)]
                for ids, scores in zip(results["labels"], results["scores"])]
