"""text-classification: softmax/sigmoid over logits, top-k labels from the model's id2label.

A text, or a text pair (`input.columns = {text = "query", text_pair = "passage"}`): cross-encoders and NLI
models score the pair as one sequence, as transformers' pipeline does for `{"text": ..., "text_pair": ...}`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Task, TaskOptions


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


ALL_LABELS = 1_000_000  # top_k = None in a transformers call: every label


class ClassificationOptions(TaskOptions):
    top_k: int = Field(1, gt=0, description="labels per row, best first (more than 1: list columns)")
    function_to_apply: Literal["default", "softmax", "sigmoid", "none"] = "default"


class Classification:
    """Shared by text and image classification: scores, top-k labels from id2label, label/score columns."""

    head_suffix: str = "ForSequenceClassification"
    Options = ClassificationOptions
    columns = ("label", "score")
    default_call_top_k: int | None = None  # transformers' top_k when a call gives none (images: 5)

    def _setup_labels(self, config: dict[str, Any]) -> None:
        id2label = config.get("id2label") or {}
        self.num_labels = len(id2label) or int(config.get("num_labels", 2))
        self.labels = [str(id2label.get(str(i), id2label.get(i, f"LABEL_{i}"))) for i in range(self.num_labels)]
        self.top_k = min(self.options.top_k, self.num_labels)
        self.function = self._function(self.options.function_to_apply)

    @classmethod
    def from_call(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {}
        top_k = kwargs["top_k"] if "top_k" in kwargs else cls.default_call_top_k
        if "top_k" in kwargs or top_k is not None:
            options["top_k"] = ALL_LABELS if top_k is None else top_k
        if kwargs.get("function_to_apply") is not None:
            function = kwargs["function_to_apply"]
            options["function_to_apply"] = str(getattr(function, "value", function)).lower()
        return options

    def transformers_rows(self, outputs, inputs, values, call):
        """Dicts {label, score}: one per row without top_k, else a list per row (transformers' shapes)."""
        out = self.postprocess(outputs, inputs)
        ids, scores = out["label"], out["score"]
        if ids.ndim == 1:
            ids, scores = ids[:, None], scores[:, None]
        rows = [[{"label": self.labels[j], "score": float(v)} for j, v in zip(i, s)] for i, s in zip(ids, scores)]
        return rows if self._listed(call) else [row[0] for row in rows]

    def _listed(self, call: dict[str, Any]) -> bool:
        return "top_k" in call or self.default_call_top_k is not None

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
    aliases = ("sentiment-analysis",)
    roles = ("text", "text_pair")
    auto_class = "AutoModelForSequenceClassification"
    encodes_once = True
    lean_tokenizer = True
    output_name = "logits"
    shortcut = "classify"
    call_options = frozenset({"batch_size", "top_k", "function_to_apply", "truncation", "max_length", "padding"})

    def __init__(self, config: dict[str, Any], tokenizer: Any, options: ClassificationOptions | None = None, *,
                 max_length: int | None = None, **option_values: Any) -> None:
        Task.__init__(self, config, tokenizer, options, max_length=max_length, **option_values)
        self._setup_labels(config)

    def transformers_single(self, results, call, value):
        """transformers: one string input without top_k gives a list holding one dict (a dict input: the dict)."""
        return results if isinstance(value, str) and not self._listed(call) else results[0]
