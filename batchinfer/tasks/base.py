"""What a task does: turn inputs (texts, images) into model inputs, and model outputs into Arrow columns.

A task knows nothing of storage or runtimes. `preprocess` is a whole-batch tokenizer or image-processor call,
`postprocess` is vectorised numpy on one model batch, `to_arrow` turns the concatenated results into Arrow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from itertools import chain
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from batchinfer.errors import ModelError


@dataclass
class Encoded:
    """Texts tokenized once (in the reader thread): token counts, and the truncated ids the model will get.

    Ids are flat arrays with per-text `starts`/`kept` counts, so that choosing and padding a batch is numpy.
    `ids` is None for tasks that tokenize each batch themselves (text pairs, offsets).
    """

    lengths: np.ndarray  # tokens per text before truncation (special tokens included)
    kept: np.ndarray  # tokens per text after truncation
    ids: np.ndarray | None = None
    type_ids: np.ndarray | None = None
    starts: np.ndarray | None = None

    def subset(self, rows: np.ndarray) -> Encoded:
        if self.ids is None:
            return Encoded(self.lengths[rows], self.kept[rows])
        return Encoded(self.lengths[rows], self.kept[rows], self.ids, self.type_ids, self.starts[rows])

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the chosen texts' ids in the flat arrays, and each text's count."""
        counts = self.kept[rows]
        within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        return np.repeat(self.starts[rows], counts) + within, counts


class Task(ABC):
    name: ClassVar[str]
    modality: ClassVar[str] = "text"  # "text" or "image": which column types and which preprocessor
    auto_class: ClassVar[str]  # the transformers Auto class that loads a model for this task
    output_name: ClassVar[str]  # the model output the task reads
    sequence_output: ClassVar[bool] = False  # does the output keep the sequence axis (per-token logits)?
    pairs_per_row: int = 1  # model inputs each row becomes (zero-shot: one per candidate label)
    encodes_once: ClassVar[bool] = False  # is preprocess a plain tokenizer call, so `encode` can do it up front?

    def __init__(self, config: dict[str, Any], processor: Any, *, max_length: int | None = None) -> None:
        self.config = config
        self.tokenizer = processor
        self.max_length = self._max_length(max_length)

    # -- checks ------------------------------------------------------------------------------------
    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        """Raise ModelError if the model's config says it was built for something else."""

    def _max_length(self, requested: int | None) -> int:
        limits = [self.config.get("max_position_embeddings"), getattr(self.tokenizer, "model_max_length", None)]
        limits = [int(x) for x in limits if isinstance(x, (int, float)) and 0 < x < 1_000_000]
        model_max = min(limits) if limits else 512
        if requested is None:
            return model_max
        if requested > model_max:
            raise ModelError(f"model.max_length = {requested} is more than the model allows ({model_max})")
        return requested

    # -- the three phases --------------------------------------------------------------------------
    def token_lengths(self, texts: list[str]) -> np.ndarray:
        """Token count of each text before truncation (special tokens included)."""
        counter = self._counter()
        if counter is not None:
            return np.fromiter((len(e.ids) for e in counter.encode_batch(texts)), dtype=np.int64, count=len(texts))
        enc = self.tokenizer(texts, truncation=False, padding=False, return_attention_mask=False,
                             return_token_type_ids=False, verbose=False)
        return np.fromiter(map(len, enc["input_ids"]), dtype=np.int64, count=len(texts))

    def _counter(self):
        """A private copy of the fast tokenizer with no padding or truncation, for counting tokens."""
        if not hasattr(self, "_counter_tok"):
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            if backend is None:
                self._counter_tok = None
            else:
                from tokenizers import Tokenizer

                self._counter_tok = Tokenizer.from_str(backend.to_str())
                self._counter_tok.no_padding()
                self._counter_tok.no_truncation()
        return self._counter_tok

    def encode(self, texts: list[str]) -> Encoded:
        """Tokenize once: token counts for truncation checks and sorting, and (where the task allows) the ids.

        The ids equal what `preprocess` would give each text before padding (same truncation); `pad` makes
        the model inputs of a batch from them, so long texts are not tokenized twice.
        """
        if not (self.encodes_once and self._truncator() is not None):
            lengths = self.token_lengths(texts)
            return Encoded(lengths, np.minimum(lengths, self.max_length))
        encodings = self._truncator().encode_batch(texts)
        n = len(encodings)
        kept = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n)
        cut = np.fromiter((sum(len(o.ids) - sum(o.special_tokens_mask) for o in e.overflowing)
                           for e in encodings), dtype=np.int64, count=n)
        total = int(kept.sum())
        return Encoded(kept + cut, kept,
                       np.fromiter(chain.from_iterable(e.ids for e in encodings), dtype=np.int64, count=total),
                       np.fromiter(chain.from_iterable(e.type_ids for e in encodings), dtype=np.int64, count=total),
                       np.cumsum(kept) - kept)

    def _truncator(self):
        """A private copy of the fast tokenizer that truncates as `preprocess` does and does not pad."""
        if not hasattr(self, "_truncator_tok"):
            backend = getattr(self.tokenizer, "backend_tokenizer", None)
            self._truncator_tok = None
            if backend is not None:
                from tokenizers import Tokenizer

                tok = Tokenizer.from_str(backend.to_str())
                tok.no_padding()
                tok.enable_truncation(self.max_length, stride=0, strategy="longest_first",
                                      direction=getattr(self.tokenizer, "truncation_side", "right"))
                self._truncator_tok = tok
        return self._truncator_tok

    def pad(self, encoded: Encoded, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The model inputs of one batch from encoded texts: what `preprocess` returns for those texts."""
        positions, counts = encoded.gather(rows)
        width = int(counts.max()) if len(counts) else 0
        columns = np.arange(width)
        if getattr(self.tokenizer, "padding_side", "right") == "left":
            mask = columns >= (width - counts)[:, None]
        else:
            mask = columns < counts[:, None]
        ids = np.full(mask.shape, self.tokenizer.pad_token_id or 0, dtype=np.int64)
        ids[mask] = encoded.ids[positions]
        out = {"input_ids": ids}
        if "token_type_ids" in self.tokenizer.model_input_names:
            types = np.full(mask.shape, getattr(self.tokenizer, "pad_token_type_id", 0), dtype=np.int64)
            types[mask] = encoded.type_ids[positions]
            out["token_type_ids"] = types
        out["attention_mask"] = mask.astype(np.int64)
        return out

    def preprocess(self, texts: list[str]) -> dict[str, np.ndarray]:
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length, padding=True,
                             return_tensors="np")
        return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}

    @abstractmethod
    def postprocess(self, outputs: dict[str, np.ndarray], inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Model outputs of one batch to one numpy array per prediction column (first axis = rows)."""

    @abstractmethod
    def output_schema(self) -> pa.Schema:
        """The prediction columns, under their canonical names."""

    @abstractmethod
    def to_arrow(self, results: dict[str, np.ndarray]) -> dict[str, pa.Array]:
        """Concatenated postprocess results to Arrow arrays matching `output_schema`."""

    def empty_results(self) -> dict[str, pa.Array]:
        return {f.name: pa.array([], type=f.type) for f in self.output_schema()}


class ImageTask(Task):
    """A task over images: the model's image processor turns decoded PIL images into pixel values."""

    modality = "image"

    def __init__(self, config: dict[str, Any], processor: Any, **_: Any) -> None:
        self.config = config
        self.processor = processor
        self.max_length = None

    def token_lengths(self, values: list[Any]) -> np.ndarray:
        return np.zeros(len(values), dtype=np.int64)

    def encode(self, values: list[Any]) -> Encoded:
        zeros = np.zeros(len(values), dtype=np.int64)  # every image becomes the same shape: keep input order
        return Encoded(zeros, zeros)

    def preprocess(self, images: list[Any]) -> dict[str, np.ndarray]:
        out = self.processor(images=images, return_tensors="np")
        return {"pixel_values": np.asarray(out["pixel_values"], dtype=np.float32)}
