"""question-answering (extractive): the best spans of a context for a question, as transformers 4.5x's pipeline.

Each row is a `question` and a `context`. A context longer than one model input is split into overlapping
windows (`max_seq_len` tokens each, `doc_stride` tokens shared by neighbours); every window of a row goes into
the same model batch, and the row's answers are chosen over all of its windows: per window, start and end
probabilities (a softmax over the context's tokens), span scores start x end for spans of at most
`max_answer_len` tokens, the same answer text from several windows adding up, best first. Offsets are
characters of the context, widened to whole words with `align_to_words`. transformers 5 removed this pipeline;
the rules here are those of transformers 4.57 (`QuestionAnsweringPipeline`, fast tokenizers).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Encoded, Task, TaskOptions, object_rows


WINDOWS_PER_CALL = 64  # model inputs per backend call, however many windows a batch's rows bring


class QuestionAnsweringOptions(TaskOptions):
    top_k: int = Field(1, ge=1, description="answers per row, best first (more than 1: list columns)")
    max_answer_len: int = Field(15, ge=1, description="longest answer, in tokens")
    max_seq_len: int | None = Field(None, gt=0, description="tokens per window (default: 384, or the model's "
                                                              "limit if lower)")
    doc_stride: int | None = Field(None, gt=0, description="tokens neighbouring windows share (default: "
                                                            "max_seq_len / 2, at most 128)")
    max_question_len: int = Field(64, gt=0, description="kept for transformers' call contract: as with its "
                                                         "fast tokenizers, the question is not cut")
    handle_impossible_answer: bool = Field(False, description="an empty answer may win (SQuAD 2 models)")
    align_to_words: bool = Field(True, description="widen answers to whole words")


class QuestionAnswering(Task):
    name = "question-answering"
    auto_class = "AutoModelForQuestionAnswering"
    output_name = "start_logits"
    extra_outputs = ("end_logits",)
    sequence_output = True
    roles = ("question", "context")
    required_roles = ("question", "context")
    Options = QuestionAnsweringOptions
    columns = ("answer", "score", "start", "end")
    call_options = frozenset({"batch_size", "top_k", "topk", "doc_stride", "max_answer_len", "max_seq_len",
                              "max_question_len", "handle_impossible_answer", "align_to_words", "padding"})

    def __init__(self, config: dict[str, Any], tokenizer: Any, options: QuestionAnsweringOptions | None = None,
                 **kwargs: Any) -> None:
        super().__init__(config, tokenizer, options, **kwargs)
        if not getattr(tokenizer, "is_fast", False):
            raise ModelError("question-answering needs a fast tokenizer (a tokenizer.json in the model folder)",
                             hint="save the model's tokenizer with a recent transformers to get tokenizer.json")
        model_max = self.max_length
        self.seq_len = self.options.max_seq_len or min(model_max, 384)
        if self.seq_len > model_max:
            raise ModelError(f"max_seq_len = {self.seq_len} is more than the model takes ({model_max})")
        self.stride = self.options.doc_stride or min(self.seq_len // 2, 128)
        if self.stride > self.seq_len:
            raise ModelError(f"doc_stride ({self.stride}) is larger than max_seq_len ({self.seq_len})")
        self.max_length = self.seq_len
        self.question_first = getattr(tokenizer, "padding_side", "right") == "right"

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        archs = config.get("architectures") or []
        if archs and not any(a.endswith("ForQuestionAnswering") for a in archs):
            raise ModelError(f"model {model_name} is a {', '.join(archs)}, not an extractive question-answering model",
                             hint="use a *ForQuestionAnswering model (e.g. one fine-tuned on SQuAD)")

    # -- inputs ------------------------------------------------------------------------------------------
    def check_rows(self, values: list[Any]) -> dict[int, str]:
        """Rows without a question or a context, and questions too long to leave a window room for context."""
        bad: dict[int, str] = {}
        for row, (question, context) in enumerate(values):
            if not question.strip():
                bad[row] = "the question is empty"
            elif not context.strip():
                bad[row] = "the context is empty"
        rest = [row for row in range(len(values)) if row not in bad]
        if rest:
            lengths = self.token_lengths([values[row][0] for row in rest])  # with its special tokens
            room = self.seq_len - lengths - 1  # the pair's separator
            for row, length, left in zip(rest, lengths, room):
                if left <= self.stride:
                    bad[row] = (f"the question has {int(length)} tokens: a window of max_seq_len {self.seq_len} "
                                f"leaves {int(left)} for the context, not more than doc_stride {self.stride}; "
                                "shorten the question or raise max_seq_len")
        return bad

    def call_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            for role in self.roles:
                if value.get(role) is None:
                    raise ValueError(f"`{role}` cannot be None")
                if isinstance(value[role], str) and not value[role]:
                    raise ValueError(f"`{role}` cannot be empty")
            return value["question"], value["context"]
        raise TypeError("question-answering takes question= and context= (or dicts with both)")

    def _windows(self, values: list[tuple[str, str]], **padding: Any):
        questions, contexts = [v[0] for v in values], [v[1] for v in values]
        first, second = (questions, contexts) if self.question_first else (contexts, questions)
        return self.tokenizer(first, second, truncation="only_second" if self.question_first else "only_first",
                              max_length=self.seq_len, stride=self.stride, return_overflowing_tokens=True,
                              return_offsets_mapping=True, return_token_type_ids=True, verbose=False, **padding)

    def token_lengths(self, values: list[Any]) -> np.ndarray:
        if values and isinstance(values[0], tuple):  # a row's longest window (never more than max_seq_len)
            return self.encode(values).lengths
        return super().token_lengths(values)

    def encode(self, values: list[Any]) -> Encoded:
        """Each row's windows: `lengths` its longest, `kept` the tokens of all of them (the batch budget)."""
        rows = len(values)
        if not rows:
            return Encoded(np.zeros(0, np.int64), np.zeros(0, np.int64))
        enc = self._windows(values)
        owner = np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)
        sizes = np.fromiter(map(len, enc["input_ids"]), dtype=np.int64, count=len(owner))
        longest = np.zeros(rows, np.int64)
        np.maximum.at(longest, owner, sizes)
        windows = np.bincount(owner, minlength=rows)
        return Encoded(longest, longest * windows)

    def batch_lengths(self, encoded: Encoded) -> np.ndarray:
        return encoded.kept

    def inputs_per_row(self, encoded: Encoded) -> np.ndarray:
        return encoded.kept // np.maximum(encoded.lengths, 1)  # its windows

    def forward(self, backend, inputs, *, keys, values):
        """The batch's windows, WINDOWS_PER_CALL at a time (one row of a very long context can bring hundreds)."""
        windows = len(inputs["window_row"])
        if windows <= WINDOWS_PER_CALL:
            return backend.forward(inputs)
        names = [k for k in self.tokenizer.model_input_names if k in inputs]
        calls = [backend.forward({k: inputs[k][i:i + WINDOWS_PER_CALL] for k in names})
                 for i in range(0, windows, WINDOWS_PER_CALL)]
        return {name: np.concatenate([c[name] for c in calls]) for name in calls[0]}

    def preprocess(self, values: list[Any]) -> dict[str, Any]:
        """The windows of a batch's rows, padded; beside the model inputs, what postprocess maps spans with."""
        enc = self._windows(values, padding=True, return_tensors="np")
        names = self.tokenizer.model_input_names
        inputs: dict[str, Any] = {k: np.asarray(enc[k], dtype=np.int64) for k in names if k in enc}
        sequence = np.array([[-1 if s is None else s for s in e.sequence_ids] for e in enc.encodings], np.int64)
        p_mask = (sequence != 1) if self.question_first else np.zeros(sequence.shape, bool)
        if self.tokenizer.cls_token_id is not None:
            p_mask &= inputs["input_ids"] != self.tokenizer.cls_token_id
        inputs["p_mask"] = p_mask
        inputs["window_row"] = np.asarray(enc["overflow_to_sample_mapping"], dtype=np.int64)
        inputs["encodings"] = enc.encodings  # per window: token -> word -> characters of the context
        inputs["contexts"] = [v[1] for v in values]
        return inputs

    # -- answers -----------------------------------------------------------------------------------------
    def postprocess(self, outputs, inputs):
        options = self.options
        wanted = options.top_k * 2 + 10 if options.align_to_words else options.top_k  # some merge into one
        rows = len(inputs["contexts"])
        answers: list[list[dict]] = [[] for _ in range(rows)]
        null = np.full(rows, 1_000_000.0)
        mask = inputs.get("attention_mask")
        for w, row in enumerate(inputs["window_row"]):
            allowed = ~inputs["p_mask"][w] & (True if mask is None else mask[w].astype(bool))
            starts, ends, scores, null_score = _spans(outputs["start_logits"][w], outputs["end_logits"][w],
                                                      allowed, wanted, options.max_answer_len)
            null[row] = min(null[row], null_score)
            context, enc = inputs["contexts"][row], inputs["encodings"][w]
            for s, e, score in zip(starts, ends, scores):
                first, last = self._characters(enc, int(s), int(e))
                text = context[first:last]
                same = next((a for a in answers[row] if a["answer"].lower() == text.lower()), None)
                if same is not None:
                    same["score"] += score.item()
                else:
                    answers[row].append({"score": score.item(), "start": first, "end": last, "answer": text})
        best = []
        for row in range(rows):
            found = answers[row] + ([{"score": null[row].item(), "start": 0, "end": 0, "answer": ""}]
                                    if options.handle_impossible_answer else [])
            best.append(sorted(found, key=lambda a: a["score"], reverse=True)[: options.top_k])
        return {name: object_rows([[a[name] for a in row] for row in best]) for name in self.columns}

    def _characters(self, enc, s: int, e: int) -> tuple[int, int]:
        """The context characters of tokens s..e (widened to whole words with align_to_words)."""
        sequence = 1 if self.question_first else 0
        if self.options.align_to_words:
            try:
                return (enc.word_to_chars(enc.token_to_word(s), sequence_index=sequence)[0],
                        enc.word_to_chars(enc.token_to_word(e), sequence_index=sequence)[1])
            except Exception:  # a token of no word (a special token): its own offsets, as transformers
                pass
        return enc.offsets[s][0], enc.offsets[e][1]

    def probe_values(self, texts):
        return [(text, " ".join(texts)) for text in texts]  # each probe sentence asked of all of them

    def comparable(self, outputs, inputs):
        mask = inputs["attention_mask"].astype(np.float32)
        return np.concatenate([outputs["start_logits"] * mask, outputs["end_logits"] * mask], 1)

    # -- columns -----------------------------------------------------------------------------------------
    def output_schema(self) -> pa.Schema:
        types = {"answer": pa.string(), "score": pa.float32(), "start": pa.int64(), "end": pa.int64()}
        if self.options.top_k == 1:
            return pa.schema(list(types.items()))
        return pa.schema([(name, pa.list_(kind)) for name, kind in types.items()])

    def to_arrow(self, results):
        arrays = {}
        for field in self.output_schema():
            lists = list(results[field.name])
            if self.options.top_k == 1:  # a row always has an answer unless its context has no span at all
                arrays[field.name] = pa.array([v[0] if v else None for v in lists], type=field.type)
            else:
                arrays[field.name] = pa.array(lists, type=field.type)
        return arrays

    def transformers_rows(self, outputs, inputs, values, call):
        """transformers: one answer as a dict, several as a list of dicts (best first)."""
        results = self.postprocess(outputs, inputs)
        rows = []
        for i in range(len(results["answer"])):
            found = [{"score": float(s), "start": int(a), "end": int(b), "answer": t} for s, a, b, t in
                     zip(results["score"][i], results["start"][i], results["end"][i], results["answer"][i])]
            rows.append(found[0] if len(found) == 1 else found)
        return rows

    def compare(self, got, want):
        same = [(g, a, b) == (w, c, d) for g, a, b, w, c, d in zip(
            got["answer"].to_pylist(), got["start"].to_pylist(), got["end"].to_pylist(),
            want["answer"].to_pylist(), want["start"].to_pylist(), want["end"].to_pylist())]
        return float(np.mean(same)) if same else 1.0, "share of equal answer spans"


def _spans(start: np.ndarray, end: np.ndarray, allowed: np.ndarray, k: int, max_answer_len: int):
    """One window's k best spans (start, end, score) over its allowed tokens, and its empty answer's score
    (transformers' select_starts_ends and decode_spans)."""
    start = np.where(allowed, start, np.float32(-10000.0)).astype(np.float32)
    end = np.where(allowed, end, np.float32(-10000.0)).astype(np.float32)
    start = np.exp(start - start.max())
    start = start / start.sum()
    end = np.exp(end - end.max())
    end = end / end.sum()
    null = float(start[0] * end[0])
    start[0] = end[0] = 0.0
    candidates = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)
    flat = candidates.ravel()
    if k == 1:
        order = np.array([np.argmax(flat)])
    elif len(flat) < k:
        order = np.argsort(-flat)
    else:
        order = np.argpartition(-flat, k)[:k]
        order = order[np.argsort(-flat[order])]
    starts, ends = np.unravel_index(order, candidates.shape)
    desired = allowed.copy()
    desired[0] = True  # as transformers' filter (it looks indices up in a 2-D nonzero(): 0 always matches)
    keep = desired[starts] & desired[ends]
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[starts, ends], null
