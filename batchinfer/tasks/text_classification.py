"""text-classification: softmax/sigmoid over logits, top-k labels from the model's id2label."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Task


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class Classification:
    """Shared by text and image classification: scores, top-k labels from id2label, label/score columns."""

    head_suffix: str = "ForSequenceClassification"

    def _setup_labels(self, config: dict[str, Any], top_k: int, function_to_apply: str) -> None:
        id2label = config.get("id2label") or {}
        self.num_labels = len(id2label) or int(config.get("num_labels", 2))
        self.labels = [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(self.num_labels)]
        self.top_k = min(top_k, self.num_labels)
        self.function = self._function(function_to_apply)

    def _function(self, requested: str) -> str:
        """The same default as transformers' classification pipelines."""
        if requested != "default":
            return requested
        problem = self.config.get("problem_type")
        if problem == "regression":
            return "none"
        if problem == "multi_label_classification" or self.num_labels == 1:
            return "sigmoid"
        return "softmax"

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        archs = config.get("architectures") or []
        if archs and not any(a.endswith(cls.head_suffix) for a in archs):
            raise ModelError(
                f"model {model_name} is a {', '.join(archs)}, which has no classification head "
                f"for {cls.name}",
                hint=f"use a *{cls.head_suffix} model, or task = 'feature-extraction' for embeddings",
            )

    def scores(self, logits: np.ndarray) -> np.ndarray:
        return {"softmax": softmax, "sigmoid": sigmoid, "none": lambda x: x}[self.function](
            logits.astype(np.float32, copy=False))

    def postprocess(self, outputs, inputs):
        scores = self.scores(outputs["logits"])
        if self.top_k == 1:
            ids = scores.argmax(axis=-1)
            return {"label": ids, "score": np.take_along_axis(scores, ids[:, None], axis=-1)[:, 0]}
        ids = np.argsort(-scores, axis=-1, kind="stable")[:, : self.top_k]
        return {"label": ids, "score": np.take_along_axis(scores, ids, axis=-1)}

    def output_schema(self) -> pa.Schema:
        if self.top_k == 1:
            return pa.schema([("label", pa.string()), ("score", pa.float32())])
        return pa.schema([("label", pa.list_(pa.string())), ("score", pa.list_(pa.float32()))])

    def to_arrow(self, results):
        names = pa.array(self.labels, type=pa.string())
        ids = results["label"]
        scores = results["score"].astype(np.float32, copy=False)
        if self.top_k == 1:
            return {"label": names.take(pa.array(ids)), "score": pa.array(scores)}
        offsets = pa.array(np.arange(0, ids.size + 1, self.top_k, dtype=np.int32))
        return {
            "label": pa.ListArray.from_arrays(offsets, names.take(pa.array(ids.reshape(-1)))),
            "score": pa.ListArray.from_arrays(offsets, pa.array(scores.reshape(-1))),
        }


class TextClassification(Classification, Task):
    name = "text-classification"
    auto_class = "AutoModelForSequenceClassification"
    encodes_once = True
    output_name = "logits"

    def __init__(self, config: dict[str, Any], tokenizer: Any, *, max_length: int | None = None,
                 top_k: int = 1, function_to_apply: str = "default") -> None:
        Task.__init__(self, config, tokenizer, max_length=max_length)
        self._setup_labels(config, top_k, function_to_apply)
