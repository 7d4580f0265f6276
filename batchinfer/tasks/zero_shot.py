"""zero-shot-classification with NLI models: each text against every candidate label's hypothesis.

All labels of a row go into the same model batch (the batcher counts rows, each row brings its pairs).
Scores follow transformers' ZeroShotClassificationPipeline: a softmax of the entailment logits across labels,
or, with `multi_label`, entailment against contradiction for each label on its own.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Task, TaskOptions


class CandidateLabelOptions(TaskOptions):
    """The zero-shot tasks' candidate_labels and the hypothesis_template each label fills."""

    task_name: ClassVar[str] = "zero-shot-classification"  # named in the error for missing labels
    label_example: ClassVar[str] = "['sports', 'politics']"
    candidate_labels: list[str] = Field([], validate_default=True)
    hypothesis_template: str = "This example is {}."

    @field_validator("candidate_labels", mode="before")
    @classmethod
    def _some_labels(cls, value: Any) -> Any:
        if isinstance(value, str):  # transformers also takes "a, b, c"
            value = [label.strip() for label in value.split(",") if label.strip()]
        if not value:
            raise ValueError(f"{cls.task_name} needs candidate_labels, e.g. {cls.label_example}")
        return value

    @field_validator("hypothesis_template")
    @classmethod
    def _has_a_slot(cls, value: str) -> str:
        if value.format("X") == value:
            raise ValueError("hypothesis_template needs a {} where the label goes")
        return value


class ZeroShotOptions(CandidateLabelOptions):
    multi_label: bool = False


class RankedLabels:
    """The zero-shot tasks' columns: every candidate label (`self.labels`), best first, and its score; results
    hold each row's label indices in that order and the scores alike."""

    labels: list[str]

    def output_schema(self) -> pa.Schema:
        return pa.schema([("labels", pa.list_(pa.string())), ("scores", pa.list_(pa.float32()))])

    def to_arrow(self, results):
        n = len(self.labels)
        ids, scores = results["labels"], results["scores"].astype(np.float32)
        offsets = pa.array(np.arange(0, ids.size + 1, n, dtype=np.int32))
        names = pa.array(self.labels, type=pa.string())
        return {"labels": pa.ListArray.from_arrays(offsets, names.take(pa.array(ids.reshape(-1)))),
                "scores": pa.ListArray.from_arrays(offsets, pa.array(scores.reshape(-1)))}


class ZeroShotClassification(RankedLabels, Task):
    name = "zero-shot-classification"
    auto_class = "AutoModelForSequenceClassification"
    output_name = "logits"
    lean_tokenizer = True
    Options = ZeroShotOptions
    columns = ("labels", "scores")
    call_options = frozenset({"batch_size", "candidate_labels", "hypothesis_template", "multi_label"})

    def __init__(self, config: dict[str, Any], tokenizer: Any, options: ZeroShotOptions | None = None,
                 **kwargs: Any) -> None:
        super().__init__(config, tokenizer, options, **kwargs)
        self.labels = list(self.options.candidate_labels)
        self.hypotheses = [self.options.hypothesis_template.format(label) for label in self.labels]
        self.multi_label = self.options.multi_label or len(self.labels) == 1
        self.entailment = self.entailment_id(config)
        if self.entailment < 0:
            raise ModelError("zero-shot-classification needs an NLI model: its label2id has no 'entailment' label",
                             hint="use a model fine-tuned on MNLI/XNLI (labels entailment/neutral/contradiction)")
        self.contradiction = -1 if self.entailment == 0 else 0

    @property
    def pairs_per_row(self) -> int:
        return len(self.labels)

    @classmethod
    def probe_options(cls) -> ZeroShotOptions:
        return ZeroShotOptions(candidate_labels=["positive", "negative"])

    @classmethod
    def from_call(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {"multi_label": False, **super().from_call(kwargs)}

    def transformers_rows(self, outputs, inputs, values, call):
        rows = super().transformers_rows(outputs, inputs, values, call)
        return [{"sequence": text, **row} for text, row in zip(values, rows)]

    @staticmethod
    def entailment_id(config: dict[str, Any]) -> int:
        for label, index in (config.get("label2id") or {}).items():
            if str(label).lower().startswith("entail"):
                return int(index)
        return -1

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        archs = config.get("architectures") or []
        if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
            raise ModelError(f"model {model_name} is a {', '.join(archs)}, not an NLI classifier",
                             hint="use a *ForSequenceClassification model trained on NLI")
        if cls.entailment_id(config) < 0:
            raise ModelError(f"model {model_name} has no 'entailment' label: it is not an NLI model",
                             hint="use a model fine-tuned on MNLI/XNLI (labels entailment/neutral/contradiction)")

    def preprocess(self, texts: list[str]) -> dict[str, np.ndarray]:
        firsts = [t for t in texts for _ in self.hypotheses]
        seconds = self.hypotheses * len(texts)
        try:
            enc = self.tokenizer(firsts, seconds, padding=True, truncation="only_first", max_length=self.max_length,
                                 return_tensors="np")
        except Exception as exc:  # as transformers: a hypothesis too long to truncate the text for
            if "too short" not in str(exc):
                raise
            enc = self.tokenizer(firsts, seconds, padding=True, truncation=False, return_tensors="np")
        return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}

    def postprocess(self, outputs, inputs):
        logits = outputs["logits"].astype(np.float32, copy=False)
        logits = logits.reshape(-1, len(self.labels), logits.shape[-1])
        if self.multi_label:
            pair = logits[..., [self.contradiction, self.entailment]]
            e = np.exp(pair)
            scores = (e / e.sum(-1, keepdims=True))[..., 1]
        else:
            e = np.exp(logits[..., self.entailment])
            scores = e / e.sum(-1, keepdims=True)
        order = np.stack([np.argsort(row)[::-1] for row in scores]) if len(scores) else \
            np.zeros((0, len(self.labels)), dtype=np.int64)
        return {"labels": order, "scores": np.take_along_axis(scores, order, axis=1)}
