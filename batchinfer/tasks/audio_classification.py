"""audio-classification: a clip in, top-k labels from the model's id2label out (wav2vec2-, HuBERT- and
AST-shaped `*ForAudioClassification` / `*ForSequenceClassification` models), as transformers' pipeline."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from batchinfer.errors import ModelError
from batchinfer.tasks.base import AudioTask
from batchinfer.tasks.text_classification import ALL_LABELS, Classification, ClassificationOptions


RAW_LIMIT_S = 60.0


class AudioClassificationOptions(ClassificationOptions):
    max_duration_s: float | None = Field(None, gt=0, description="the longest clip in seconds; a longer one is a "
                                         f"row error (default: {RAW_LIMIT_S:g} for models of raw samples, whose "
                                         "attention grows with the square of the length; none for feature "
                                         "models such as AST, which read their first seconds)")


class AudioClassification(Classification, AudioTask):
    name = "audio-classification"
    auto_class = "AutoModelForAudioClassification"
    output_name = "logits"
    Options = AudioClassificationOptions
    roles = ("audio",)
    required_roles = ("audio",)
    default_call_top_k = ALL_LABELS  # transformers' audio pipeline gives every label unless asked
    call_options = frozenset({"batch_size", "top_k", "function_to_apply"})

    def __init__(self, config: dict[str, Any], processor: Any, options: AudioClassificationOptions | None = None,
                 **kwargs: Any) -> None:
        AudioTask.__init__(self, config, processor, options, **kwargs)
        self._setup_labels(config)

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        archs = config.get("architectures") or []
        if archs and not any(a.endswith(("ForAudioClassification", "ForSequenceClassification")) for a in archs):
            raise ModelError(f"model {model_name} is a {', '.join(archs)}, which has no audio classification head",
                             hint="use a *ForAudioClassification model (wav2vec2, HuBERT, AST, ...)")

    def _function(self, requested: str) -> str:
        """transformers' audio pipeline: softmax unless the config says regression or multi-label."""
        if requested != "default":
            return requested
        problem = self.config.get("problem_type")
        return {"regression": "none", "multi_label_classification": "sigmoid"}.get(problem, "softmax")

    def check_rows(self, clips: list[Any]) -> dict[int, str]:
        limit = self.options.max_duration_s or (RAW_LIMIT_S if self.raw_samples else None)
        return self.too_long(clips, limit, "model.max_duration_s", "cut the clip, or raise the limit")

    def postprocess(self, outputs, inputs):
        logits = outputs["logits"]
        return super().postprocess({"logits": np.stack(logits) if isinstance(logits, list) else logits}, inputs)
