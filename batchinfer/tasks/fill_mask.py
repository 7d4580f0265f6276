"""fill-mask: the model's best tokens for the one masked token of each row, as transformers' FillMaskPipeline.

Scores are a vectorised softmax over the vocabulary at each row's mask position (restricted to `targets` when
given), top-k in numpy. Target ids and the filled-in sequences come from the very methods and decoding steps
of transformers' FillMaskPipeline, bound to this task's tokenizer, so tokens, token strings and sequences equal
transformers'. A row has one mask (`check_rows` refuses others); a mask cut off by truncation gives empty lists.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Task, TaskOptions
from batchinfer.tasks.text_classification import softmax

# tokenizer_kwargs of a transformers call that cannot change our answers (we always truncate to max_length)
_HARMLESS_TOKENIZER_KWARGS = {"truncation", "padding"}


class FillMaskOptions(TaskOptions):
    top_k: int = Field(5, gt=0, description="tokens per row, best first (at most the number of targets)")
    targets: list[str] | None = Field(None, description="score only these tokens (a word of several tokens: its "
                                                        "first token, as transformers)")

    @field_validator("targets", mode="before")
    @classmethod
    def _some_targets(cls, value: Any) -> Any:
        if isinstance(value, str):  # transformers also takes one target as a string
            value = [value]
        if value is not None and len(value) == 0:
            raise ValueError("targets is empty; give at least one token, e.g. ['good', 'bad'], or leave it out")
        return value


_STRINGS = pa.list_(pa.string())


class FillMask(Task):
    name = "fill-mask"
    auto_class = "AutoModelForMaskedLM"
    output_name = "logits"
    sequence_output = True
    encodes_once = True
    roles = ("text",)
    Options = FillMaskOptions
    columns = ("token", "token_str", "score", "sequence")
    call_options = frozenset({"batch_size", "top_k", "targets", "tokenizer_kwargs"})

    def __init__(self, config: dict[str, Any], tokenizer: Any, options: FillMaskOptions | None = None,
                 **kwargs: Any) -> None:
        super().__init__(config, tokenizer, options, **kwargs)
        self.mask_id = getattr(tokenizer, "mask_token_id", None)
        if self.mask_id is None:
            raise ModelError(f"{self.name} needs a tokenizer with a mask token; this model's tokenizer has none",
                             hint="use a masked language model (BERT, RoBERTa, DistilBERT) with its tokenizer")
        self.mask_token = tokenizer.mask_token
        self.pad_id = tokenizer.pad_token_id
        from transformers import FillMaskPipeline

        helper = FillMaskPipeline.__new__(FillMaskPipeline)  # only its tokenizer-level methods are used
        helper.tokenizer = tokenizer
        helper.model = SimpleNamespace(base_model_prefix=config.get("model_type", "model"))
        self._helper = helper
        self.target_ids: np.ndarray | None = None
        if self.options.targets is not None:
            try:
                self.target_ids = np.asarray(helper.get_target_ids(list(self.options.targets)), dtype=np.int64)
            except ValueError as exc:  # every target tokenizes to nothing
                raise ModelError(f"fill-mask targets {self.options.targets}: {exc}",
                                 hint="give targets that are tokens of this model's vocabulary") from None
        vocab = int(self.config.get("vocab_size") or len(tokenizer))
        self.top_k = min(self.options.top_k, len(self.target_ids) if self.target_ids is not None else vocab)
        self._token_strs: dict[int, str] = {}

    # -- checks ------------------------------------------------------------------------------------
    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        archs = config.get("architectures") or []
        if archs and not any(a.endswith("ForMaskedLM") for a in archs):
            raise ModelError(f"model {model_name} is a {', '.join(archs)}, which has no masked-language-model "
                             f"head for {cls.name}",
                             hint="use a *ForMaskedLM model (BERT, RoBERTa, DistilBERT with their MLM head)")

    def mask_counts(self, texts: list[str]) -> np.ndarray:
        """Mask tokens in each text, as the tokenizer sees them (before truncation)."""
        counter = self._counter()
        if counter is not None:
            return np.fromiter((e.ids.count(self.mask_id) for e in counter.encode_batch(texts)), dtype=np.int64,
                               count=len(texts))
        ids = self.tokenizer(texts, truncation=False, padding=False, return_attention_mask=False,
                             return_token_type_ids=False, verbose=False)["input_ids"]
        return np.fromiter((row.count(self.mask_id) for row in ids), dtype=np.int64, count=len(texts))

    def check_rows(self, values: list[Any]) -> dict[int, str]:
        counts = self.mask_counts(["" if v is None else str(v) for v in values])
        why = f"{self.name} predicts one masked token per row"
        return {int(i): (f"text has no {self.mask_token} token; {why}" if counts[i] == 0 else
                         f"text has {int(counts[i])} {self.mask_token} tokens; {why}")
                for i in np.flatnonzero(counts != 1)}

    # -- predicting --------------------------------------------------------------------------------
    def _top(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, scores), best first, of each row of mask-position logits (n, vocab)."""
        probs = softmax(logits.astype(np.float32, copy=False))
        if self.target_ids is not None:
            probs = probs[:, self.target_ids]
        k = self.top_k
        if k < probs.shape[1]:
            part = np.argpartition(-probs, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(probs.shape[1]), probs.shape)
        part_scores = np.take_along_axis(probs, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        picks = np.take_along_axis(part, order, axis=1)
        scores = np.take_along_axis(part_scores, order, axis=1)
        tokens = self.target_ids[picks] if self.target_ids is not None else picks.astype(np.int64)
        return tokens, scores

    def _sequences(self, ids: np.ndarray, real: np.ndarray, positions: np.ndarray, tokens: np.ndarray,
                   skip_special: bool) -> list[str]:
        """transformers' `sequence`: each row's ids with its mask replaced by each candidate, padding dropped."""
        k = tokens.shape[1]
        filled = np.repeat(ids, k, axis=0)
        filled[np.arange(len(filled)), np.repeat(positions, k)] = tokens.reshape(-1)
        keep = np.repeat(real, k, axis=0)
        if self.pad_id is not None:
            keep &= filled != self.pad_id
        return self.tokenizer.batch_decode([row[m].tolist() for row, m in zip(filled, keep)],
                                           skip_special_tokens=skip_special)

    def token_strs(self, tokens: np.ndarray) -> list[str]:
        """transformers' `token_str`: each token id decoded alone (cached: at most the vocabulary)."""
        new = [int(t) for t in np.unique(tokens) if int(t) not in self._token_strs]
        if new:
            self._token_strs.update(zip(new, self.tokenizer.batch_decode([[t] for t in new])))
        return [self._token_strs[int(t)] for t in tokens.reshape(-1)]

    @staticmethod
    def _ids(outputs: dict[str, np.ndarray], inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """The batch's input ids and real-token mask (transformers keeps input_ids in the model outputs)."""
        ids = inputs.get("input_ids", outputs.get("input_ids"))
        if ids is None:
            raise ValueError("fill-mask postprocess needs the input_ids of the batch")
        ids = np.asarray(ids)
        mask = inputs.get("attention_mask", outputs.get("attention_mask"))
        real = np.ones(ids.shape, dtype=bool) if mask is None else np.asarray(mask).astype(bool)
        return ids, real

    def postprocess(self, outputs, inputs):
        ids, real = self._ids(outputs, inputs)
        is_mask = (ids == self.mask_id) & real
        rows = np.flatnonzero(is_mask.sum(axis=1) == 1)  # no mask left: truncated away (others: check_rows)
        positions = is_mask[rows].argmax(axis=1)
        n, k = len(ids), self.top_k
        tokens, scores = self._top(outputs["logits"][rows, positions])
        token = np.zeros((n, k), dtype=np.int64)
        score = np.zeros((n, k), dtype=np.float32)
        token_str = np.empty((n, k), dtype=object)
        sequence = np.empty((n, k), dtype=object)
        token[rows], score[rows] = tokens, scores
        if len(rows):
            token_str[rows] = np.array(self.token_strs(tokens), dtype=object).reshape(len(rows), k)
            sequence[rows] = np.array(self._sequences(ids[rows], real[rows], positions, tokens, True),
                                      dtype=object).reshape(len(rows), k)
        filled = np.zeros(n, dtype=bool)
        filled[rows] = True
        return {"token": token, "token_str": token_str, "score": score, "sequence": sequence, "_filled": filled}

    def output_schema(self) -> pa.Schema:
        return pa.schema([("token", pa.list_(pa.int64())), ("token_str", _STRINGS),
                          ("score", pa.list_(pa.float32())), ("sequence", _STRINGS)])

    def to_arrow(self, results):
        filled = results["_filled"]
        k = self.top_k
        lengths = np.where(filled, k, 0).astype(np.int32)
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))

        def listed(values: np.ndarray, type_: pa.DataType) -> pa.Array:
            return pa.ListArray.from_arrays(offsets, pa.array(values[filled].reshape(-1), type=type_))

        return {"token": listed(results["token"], pa.int64()),
                "token_str": listed(results["token_str"], pa.string()),
                "score": listed(results["score"].astype(np.float32, copy=False), pa.float32()),
                "sequence": listed(results["sequence"], pa.string())}

    # -- the transformers pipeline contract ----------------------------------------------------------
    @classmethod
    def from_call(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        unsupported = sorted(set(kwargs.get("tokenizer_kwargs") or {}) - _HARMLESS_TOKENIZER_KWARGS)
        if unsupported:
            raise TypeError(f"fill-mask: tokenizer_kwargs {', '.join(unsupported)} are not supported "
                            f"(accepted: {', '.join(sorted(_HARMLESS_TOKENIZER_KWARGS))}); "
                            "inputs are truncated to the model's max_length")
        return super().from_call(kwargs)

    def transformers_list(self, results, call):
        """transformers' fill-mask gives a one-element list's result unlisted."""
        return results[0] if len(results) == 1 else results

    def transformers_rows(self, outputs, inputs, values, call):
        """Per row, the list of {score, token, token_str, sequence} transformers gives (several masks: one such
        list per mask, with special tokens kept in the sequence, as transformers)."""
        ids, real = self._ids(outputs, inputs)
        is_mask = (ids == self.mask_id) & real
        counts = is_mask.sum(axis=1)
        if (counts == 0).any():
            from transformers.pipelines.base import PipelineException

            raise PipelineException("fill-mask", self._helper.model.base_model_prefix,
                                    f"No mask_token ({self.mask_token}) found on the input")
        rows, positions = np.nonzero(is_mask)  # row-major: each row's masks in order
        tokens, scores = self._top(outputs["logits"][rows, positions])
        strs = self.token_strs(tokens)
        single = counts[rows] == 1
        sequences = np.empty(tokens.shape, dtype=object)
        for skip in (True, False):
            chosen = np.flatnonzero(single == skip)
            if len(chosen):
                sequences[chosen] = np.array(
                    self._sequences(ids[rows[chosen]], real[rows[chosen]], positions[chosen], tokens[chosen], skip),
                    dtype=object).reshape(len(chosen), -1)
        k = tokens.shape[1]
        per_mask = [[{"score": float(scores[m, j]), "token": int(tokens[m, j]), "token_str": strs[m * k + j],
                      "sequence": sequences[m, j]} for j in range(k)] for m in range(len(rows))]
        out: list[Any] = [[] for _ in range(len(ids))]
        for m, r in enumerate(rows):
            out[r].append(per_mask[m])
        return [row[0] if len(row) == 1 else row for row in out]
