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

from pydantic import BaseModel, ConfigDict

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


def object_rows(values: list[Any]) -> np.ndarray:
    """A 1-D object array holding one value (a list, a dict) per row, whatever the values' shapes."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The cosine of each row of `a` with the same row of `b` (2-D float arrays)."""
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


@dataclass(frozen=True)
class Head:
    """The transformers model a task runs from a folder: the class that loads it and the outputs it reads."""

    auto_class: str  # an Auto class, or a model class (CLIP's towers: CLIPVisionModelWithProjection)
    output: str
    extra_outputs: tuple[str, ...] = ()  # read where the model gives them (e.g. pooler_output)
    sequence_output: bool = False


# model types whose position ids start after the padding index (transformers' create_position_ids_from_input_ids)
_PADDING_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "mpnet", "longformer"})


class TaskOptions(BaseModel):
    """A task's own options (job file `[model]` keys, `batchinfer.predict` keywords); none by default.
    A field with `json_schema_extra={"internal": True}` is set by batchinfer itself and not listed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def public_fields(cls) -> dict[str, Any]:
        return {name: f for name, f in cls.model_fields.items()
                if not (isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("internal"))}


class Task(ABC):
    """Everything about one task. Outside `tasks/`, code reads these declarations and never a task's name.

    Declarations: `name` and `aliases` (as transformers accepts them), `modality`, input `roles` (the first
    is the one `input.column` feeds; `required_roles` must be mapped), `Options` (its pydantic options model),
    `columns` (its prediction columns, canonical names; `output_schema` types them), `call_options` (what its
    transformers pipeline accepts), `agreement` ("labels" or "cosine": how the below-fp32 gate compares two
    runs) and `shortcut` (the polars expression method, e.g. `pl.col("x").infer.classify`).
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    modality: ClassVar[str] = "text"  # "text", or a medium (media/: "image", "audio"): column types, processor
    roles: ClassVar[tuple[str, ...]] = ("text",)
    required_roles: ClassVar[tuple[str, ...]] = ("text",)
    Options: ClassVar[type[TaskOptions]] = TaskOptions
    columns: ClassVar[tuple[str, ...]]
    call_options: ClassVar[frozenset[str]] = frozenset({"batch_size"})
    agreement: ClassVar[str] = "labels"
    shortcut: ClassVar[str | None] = None
    auto_class: ClassVar[str]  # the transformers Auto class that loads a model for this task
    output_name: ClassVar[str]  # the model output the task reads
    extra_outputs: ClassVar[tuple[str, ...]] = ()  # more outputs it reads, where the model gives them
    sequence_output: ClassVar[bool] = False  # does the output keep the sequence axis (per-token logits)?
    pairs_per_row: int = 1  # model inputs each row becomes (zero-shot: one per candidate label)
    encodes_once: ClassVar[bool] = False  # is preprocess a plain tokenizer call, so `encode` can do it up front?
    # does it only tokenize batches and read the tokenizer's attributes, so a cached snapshot serves without
    # transformers (model/tokenizer.py)?
    lean_tokenizer: ClassVar[bool] = False
    keeps_call_batches: ClassVar[bool] = False  # must `batchinfer.pipeline` batch in input order (as transformers)?
    generates: ClassVar[bool] = False  # does it decode (a decoder exported with its key/value cache)?
    gate_rows: ClassVar[int] = 512  # rows of the job's input a below-fp32 run is compared on (runner)
    parts: ClassVar[tuple[str, ...]] = ()  # graphs of the model where the backend runs graphs (encoder, cross, decoder)
    text_inputs: ClassVar[bool] = False  # an image task whose model also takes text (CLIP's label prompts)
    writes_text: ClassVar[bool] = False  # a media task that writes tokens (speech recognition): its tokenizer too
    # a subclass that runs the task named here for models it `fits` (Whisper for speech recognition), with the
    # task's name, options and call contract: `tasks.for_model` picks it
    variant_of: ClassVar[str | None] = None

    def __init__(self, config: dict[str, Any], processor: Any, options: TaskOptions | None = None, *,
                 max_length: int | None = None, **option_values: Any) -> None:
        self.config = config
        self.tokenizer = processor
        self.options = options if options is not None else self.Options(**option_values)
        self.max_length = self._max_length(max_length)

    # -- checks ------------------------------------------------------------------------------------
    @classmethod
    def head(cls, config: dict[str, Any]) -> Head:
        """The model this task loads from a folder with `config` (a task may pick, e.g. one of CLIP's towers)."""
        return Head(cls.auto_class, cls.output_name, cls.extra_outputs, cls.sequence_output)

    @classmethod
    def model_parts(cls, config: dict[str, Any]) -> tuple[str, ...]:
        """The graphs the model runs as where the backend runs graphs (`parts`, unless the folder says other)."""
        return cls.parts

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        """Raise ModelError if the model's config says it was built for something else."""

    @classmethod
    def fits(cls, config: dict[str, Any]) -> bool:
        """A variant (`variant_of`): does it run this task for a model of `config` instead of the task's class?"""
        return False

    @classmethod
    def columns_for(cls, options: TaskOptions) -> tuple[str, ...]:
        """The prediction columns a job with these options writes (`columns`, unless an option adds one)."""
        return cls.columns

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

    def preprocess(self, texts: list[Any]) -> dict[str, np.ndarray]:
        """Model inputs of one batch: texts, or (text, text_pair) tuples for tasks with two text roles."""
        pairs = [t for t in texts if isinstance(t, tuple)]
        if pairs and len(pairs) != len(texts):
            raise ValueError("a batch mixes single texts and text pairs")
        args = ([t[0] for t in texts], [t[1] for t in texts]) if pairs else (texts,)
        enc = self.tokenizer(*args, truncation=True, max_length=self.max_length, padding=True, return_tensors="np")
        return {k: np.asarray(v, dtype=np.int64) for k, v in enc.items()}

    def inputs_per_row(self, encoded: Encoded) -> np.ndarray:
        """Model inputs each row becomes (zero-shot: one per candidate label): what `batch_size` counts."""
        return np.full(len(encoded.kept), self.pairs_per_row, dtype=np.int64)

    def batch_lengths(self, encoded: Encoded) -> np.ndarray:
        """Tokens each row puts into a model batch, for the batch token budget (zero-shot: one input per label)."""
        return encoded.kept * self.pairs_per_row

    def forward(self, backend, inputs: dict[str, np.ndarray], *, keys: np.ndarray, values: list[Any]
                ) -> dict[str, Any]:
        """Model outputs of one batch: one backend call (generating tasks: a whole decoding). `keys`: each
        row's position in the input (per-row seeds); `values`: the rows' inputs."""
        return backend.forward(inputs)

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

    # -- rows ----------------------------------------------------------------------------------------
    def row_values(self, roles: dict[str, list[Any]]) -> list[Any]:
        """One value per row from each mapped role's values: the first role's alone, or tuples in role order."""
        mapped = [r for r in self.roles if r in roles]
        if len(mapped) == 1:
            return list(roles[mapped[0]])
        return list(zip(*(roles[r] for r in mapped)))

    def check_rows(self, values: list[Any]) -> dict[int, str]:
        """{row: why} for rows this task cannot predict (checked before inference; they become bad rows)."""
        return {}

    # -- the transformers pipeline contract (batchinfer.pipeline) ---------------------------------
    @classmethod
    def from_call(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The task options a transformers pipeline call's keyword arguments mean."""
        return {k: v for k, v in kwargs.items() if k in cls.Options.model_fields and v is not None}

    def transformers_max_length(self, call: dict[str, Any]) -> int | None:
        """The longest text (in tokens) a transformers pipeline call takes, or None to keep `max_length`.

        For tasks whose transformers pipeline takes `truncation`: it does not truncate unless asked, so the
        model takes texts up to its position limit (`max_position_embeddings`) even where the tokenizer's
        `model_max_length` is lower; with `truncation=True` the tokenizer cuts at its `model_max_length`.
        """
        if "truncation" not in self.call_options or call.get("max_length"):
            return None
        kwargs = call.get("tokenizer_kwargs") or call.get("tokenize_kwargs") or {}
        positions = self.position_limit()
        if call.get("truncation") or kwargs.get("truncation"):
            tokenizer_max = getattr(self.tokenizer, "model_max_length", None)
            if isinstance(tokenizer_max, (int, float)) and 0 < tokenizer_max < 1_000_000:
                return min(int(tokenizer_max), positions) if positions else int(tokenizer_max)
        return positions

    def position_limit(self) -> int | None:
        """The most tokens the model's position embeddings take (RoBERTa-style models start after padding)."""
        positions = self.config.get("max_position_embeddings")
        if not isinstance(positions, int) or not 0 < positions < 1_000_000:
            return None
        if self.config.get("model_type") in _PADDING_OFFSET_POSITIONS:
            positions -= int(self.config.get("pad_token_id") or 0) + 1
        return positions

    def call_value(self, value: Any) -> Any:
        """One transformers-style input as a row value: a string, or a dict keyed by this task's roles."""
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            unknown = sorted(set(value) - set(self.roles))
            missing = [r for r in self.required_roles if r not in value]
            if unknown or missing:
                raise ValueError(f"{self.name} takes a dict with the keys {', '.join(self.roles)} "
                                 f"({', '.join(self.required_roles)} required); got {', '.join(map(str, value))}")
            given = [r for r in self.roles if value.get(r) is not None]
            return value[given[0]] if len(given) == 1 else tuple(value[r] for r in given)
        raise TypeError(f"{self.name} inputs must be strings (or dicts of {', '.join(self.roles)}), "
                        f"not {type(value).__name__}")

    @classmethod
    def call_inputs(cls, kwargs: dict[str, Any]) -> Any:
        """The inputs of a call that gives them by role keyword (`question=..., context=...`), taken out of
        `kwargs`: a dict of the roles, or a list of them where the keywords hold lists."""
        given = {role: kwargs.pop(role) for role in cls.roles if role in kwargs}
        if not given:
            raise TypeError(f"{cls.name} needs inputs: pass them, or {' and '.join(cls.required_roles)} by keyword")
        if not any(isinstance(v, (list, tuple)) for v in given.values()):
            return given
        lists = {role: list(v) if isinstance(v, (list, tuple)) else None for role, v in given.items()}
        sizes = {len(v) for v in lists.values() if v is not None}
        if len(sizes) != 1:
            raise ValueError(f"{', '.join(given)} must be lists of the same length")
        size = sizes.pop()
        return [{role: (v[i] if v is not None else given[role]) for role, v in lists.items()} for i in range(size)]

    def transformers_rows(self, outputs: dict[str, np.ndarray], inputs: dict[str, np.ndarray],
                          values: list[Any], call: dict[str, Any]) -> list[Any]:
        """One model batch's results as transformers' pipeline returns them, one per row: the value of a
        task's one prediction column, else a dict of its columns."""
        table = pa.table(self.to_arrow(self.postprocess(outputs, inputs)))
        return table.column(0).to_pylist() if table.num_columns == 1 else table.to_pylist()

    def transformers_list(self, results: list[Any], call: dict[str, Any]) -> Any:
        """What transformers returns for a list of inputs, given each one's results."""
        return results

    def transformers_single(self, results: list[Any], call: dict[str, Any], value: Any) -> Any:
        """What transformers returns for one input `value` (not in a list), given its one-row results."""
        return results[0]

    # -- the below-fp32 gate -----------------------------------------------------------------------
    @classmethod
    def probe_options(cls) -> TaskOptions:
        """Options to run probe sentences through (the artifact check before a job's own rows)."""
        return cls.Options()

    def probe_values(self, texts: list[str]) -> list[Any]:
        """Row values made of probe sentences (a task with several text roles makes its tuples of them)."""
        return texts

    def comparable(self, outputs: dict[str, np.ndarray], inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The model output two runs are compared on (real tokens only: padding carries no answer)."""
        out = outputs[self.output_name]
        if self.sequence_output:
            out = out * inputs["attention_mask"][..., None].astype(out.dtype)
        return out.reshape(len(out), -1).astype(np.float32)

    def compare(self, got: dict[str, pa.Array], want: dict[str, pa.Array]) -> tuple[float, str]:
        """(agreement, what it measures) of two runs' prediction columns: the share of equal answers."""
        key = self.columns[0]
        same = [g == w for g, w in zip(got[key].to_pylist(), want[key].to_pylist())]
        return float(np.mean(same)) if same else 1.0, f"share of equal {key}"


class MediaTask(Task):
    """A task over a medium's column (media/): its values come decoded; the model's processor makes inputs."""

    def __init__(self, config: dict[str, Any], processor: Any, options: TaskOptions | None = None, *,
                 max_length: int | None = None, tokenizer: Any = None, **option_values: Any) -> None:
        self.config = config
        self.processor = processor
        self.tokenizer = tokenizer  # tasks with text_inputs or writes_text: the model's tokenizer
        self.options = options if options is not None else self.Options(**option_values)
        self.max_length = None

    def call_value(self, value: Any) -> Any:
        """One input of a transformers-style call, decoded as the medium's column values are."""
        from batchinfer.media import medium

        return medium(self.modality).call_value(value, self.processor)

    def token_lengths(self, values: list[Any]) -> np.ndarray:
        return np.zeros(len(values), dtype=np.int64)

    def encode(self, values: list[Any]) -> Encoded:
        zeros = np.zeros(len(values), dtype=np.int64)  # every input becomes the same shape: keep input order
        return Encoded(zeros, zeros)


class ImageTask(MediaTask):
    """A task over images: the model's image processor turns decoded PIL images into pixel values."""

    modality = "image"

    def preprocess(self, images: list[Any]) -> dict[str, np.ndarray]:
        out = self.processor(images=images, return_tensors="np")
        return {"pixel_values": np.asarray(out["pixel_values"], dtype=np.float32)}


CLIPS_PER_CALL = 8  # raw-sample clips (or chunks) per backend call: a long clip's chunks do not all go at once


class AudioTask(MediaTask):
    """A task over audio clips: mono float32 samples at the feature extractor's `sampling_rate` (media/audio.py).

    Features of a fixed shape (AST's filter banks, Whisper's log-mel) batch like images. Raw samples
    (wav2vec2's `input_values`) cannot be padded without changing the outputs (the convolutions read the
    padding, and normalisation is per clip), so a batch runs its clips of equal length together, one model call
    per length: clips sorted by length share calls, and chunks of a long clip are of one length.
    """

    modality = "audio"

    @property
    def sampling_rate(self) -> int:
        return int(self.processor.sampling_rate)

    @property
    def input_name(self) -> str:
        return self.processor.model_input_names[0]

    @property
    def raw_samples(self) -> bool:
        """Does the model read the samples themselves (any length), not features of a fixed shape?"""
        return self.input_name == "input_values" and "conv_stride" in self.config

    def samples_per_frame(self) -> int:
        """Samples per model frame: the convolutions' total stride (wav2vec2: 320), else the features' hop."""
        if "conv_stride" in self.config:
            return int(np.prod(self.config["conv_stride"]))
        return int(getattr(self.processor, "hop_length", 160) or 160)

    def encode(self, clips: list[Any]) -> Encoded:
        samples = np.fromiter((len(c) for c in clips), dtype=np.int64, count=len(clips))
        return Encoded(samples, samples)

    def batch_lengths(self, encoded: Encoded) -> np.ndarray:
        """Model frames per clip (the token budget's unit for audio)."""
        return np.maximum(1, encoded.kept // self.samples_per_frame())

    def features(self, clips: list[np.ndarray]) -> dict[str, np.ndarray]:
        """The feature extractor's inputs for clips (raw samples: clips of one length)."""
        out = self.processor(clips, sampling_rate=self.sampling_rate, return_tensors="np")
        return {self.input_name: np.asarray(out[self.input_name], dtype=np.float32)}

    def preprocess(self, clips: list[np.ndarray]) -> dict[str, np.ndarray]:
        if not self.raw_samples:
            return self.features(clips)
        samples = np.fromiter((len(c) for c in clips), dtype=np.int64, count=len(clips))
        values = np.zeros((len(clips), int(samples.max()) if len(clips) else 0), np.float32)
        for length in np.unique(samples):  # normalised as the extractor does it, clip by clip
            rows = np.flatnonzero(samples == length)
            values[rows, :length] = self.features([clips[i] for i in rows])[self.input_name]
        return {self.input_name: values, "samples": samples}

    def forward(self, backend, inputs: dict[str, np.ndarray], *, keys: np.ndarray, values: list[Any]) -> dict:
        """One backend call per clip length (raw samples), of at most CLIPS_PER_CALL clips; each output a list
        of per-clip arrays then."""
        if "samples" not in inputs:
            return backend.forward(inputs)
        samples, name = inputs["samples"], self.input_name
        outputs: dict[str, list] = {}
        for length in np.unique(samples):
            same = np.flatnonzero(samples == length)
            for rows in np.array_split(same, -(-len(same) // CLIPS_PER_CALL)):  # a long clip's many chunks
                out = backend.forward({name: np.ascontiguousarray(inputs[name][rows, :length])})
                for key, arr in out.items():
                    outputs.setdefault(key, [None] * len(samples))
                    for row, value in zip(rows, arr):
                        outputs[key][row] = value
        return outputs

    def too_long(self, clips: list[np.ndarray], limit_s: float | None, option: str, hint: str) -> dict[int, str]:
        """{row: why} for clips over `limit_s` seconds (the task's `option`)."""
        if limit_s is None:
            return {}
        most = int(limit_s * self.sampling_rate)
        return {i: f"audio is {len(c) / self.sampling_rate:.1f} s long, more than {option} = {limit_s:g} s; {hint}"
                for i, c in enumerate(clips) if len(c) > most}
