"""token-classification (NER): per-token scores grouped into entities with transformers' aggregation strategies.

Scores are a vectorised softmax over each batch; grouping tokens into words and entities is done by the very
methods of transformers' TokenClassificationPipeline (bound to this task's tokenizer and labels), so entity
lists equal transformers' for every strategy. Offsets come from the fast tokenizer.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Task, TaskOptions
from batchinfer.tasks.text_classification import softmax


class TokenOptions(TaskOptions):
    aggregation_strategy: Literal["none", "simple", "first", "average", "max"] = "simple"
    ignore_labels: list[str] = ["O"]


def _entity_type(strategy: str) -> pa.DataType:
    key = "entity" if strategy == "none" else "entity_group"
    fields = [(key, pa.string()), ("score", pa.float32())]
    if strategy == "none":
        fields.append(("index", pa.int64()))
    fields += [("word", pa.string()), ("start", pa.int64()), ("end", pa.int64())]
    return pa.list_(pa.struct(fields))


class TokenClassification(Task):
    name = "token-classification"
    aliases = ("ner",)
    auto_class = "AutoModelForTokenClassification"
    output_name = "logits"
    sequence_output = True
    Options = TokenOptions
    columns = ("entities",)
    call_options = frozenset({"batch_size", "aggregation_strategy", "ignore_labels"})

    def __init__(self, config: dict[str, Any], tokenizer: Any, options: TokenOptions | None = None,
                 **kwargs: Any) -> None:
        super().__init__(config, tokenizer, options, **kwargs)
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError(f"{self.name} needs a fast tokenizer (tokenizer.json) for character offsets")
        aggregation_strategy = self.options.aggregation_strategy
        self.strategy = aggregation_strategy
        self.ignore = list(self.options.ignore_labels)
        from transformers import TokenClassificationPipeline
        from transformers.pipelines.token_classification import AggregationStrategy

        id2label = {int(k): v for k, v in (config.get("id2label") or {}).items()}
        grouper = TokenClassificationPipeline.__new__(TokenClassificationPipeline)
        grouper.tokenizer = tokenizer
        grouper.model = SimpleNamespace(config=SimpleNamespace(id2label=id2label))
        self._grouper = grouper
        self._strategy = AggregationStrategy(aggregation_strategy)

    @classmethod
    def from_call(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        strategy = kwargs.get("aggregation_strategy") or "none"  # transformers' default
        options: dict[str, Any] = {"aggregation_strategy": str(getattr(strategy, "value", strategy)).lower()}
        if kwargs.get("ignore_labels") is not None:
            options["ignore_labels"] = list(kwargs["ignore_labels"])
        return options

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        archs = config.get("architectures") or []
        if archs and not any(a.endswith("ForTokenClassification") for a in archs):
            raise ModelError(f"model {model_name} is a {', '.join(archs)}, not a token-classification model",
                             hint="use a *ForTokenClassification model (an NER model)")

    def preprocess(self, texts: list[str]) -> dict[str, np.ndarray]:
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="np",
                             return_offsets_mapping=True, return_special_tokens_mask=True)
        out = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}
        out["_texts"] = np.array(texts, dtype=object)
        return out

    def postprocess(self, outputs, inputs):
        scores = softmax(outputs["logits"].astype(np.float32, copy=False))
        lengths = inputs["attention_mask"].sum(axis=1)
        rows = np.empty(len(scores), dtype=object)
        for r, n in enumerate(lengths):
            pre = self._grouper.gather_pre_entities(
                inputs["_texts"][r], inputs["input_ids"][r, :n], scores[r, :n], inputs["offset_mapping"][r, :n],
                inputs["special_tokens_mask"][r, :n], self._strategy)
            rows[r] = [self._clean(e) for e in self._grouper.aggregate(pre, self._strategy)
                       if e.get("entity", e.get("entity_group")) not in self.ignore]
        return {"entities": rows}

    @staticmethod
    def _clean(entity: dict) -> dict:
        return {k: (float(v) if k == "score" else int(v) if k in ("index", "start", "end") else v)
                for k, v in entity.items()}

    def output_schema(self) -> pa.Schema:
        return pa.schema([("entities", _entity_type(self.strategy))])

    def to_arrow(self, results):
        return {"entities": pa.array(list(results["entities"]), type=_entity_type(self.strategy))}
