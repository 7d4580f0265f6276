"""automatic-speech-recognition with CTC models (wav2vec2-, HuBERT-, Data2Vec-audio-shaped `*ForCTC`): the
most likely token per frame, repeats and padding removed by the model's CTC tokenizer, as transformers'
pipeline decodes them. Whisper-shaped encoder-decoder models are the same task in `whisper_recognition.py`
(a variant: `tasks.for_model` picks it): the options, columns and call contract are shared.

Long audio is cut into chunks of `chunk_length_s` that overlap by `stride_length_s` on each side (default: a
sixth of the chunk), as transformers' pipeline cuts it: every chunk is normalised and run on its own, the
frames of its strides are dropped, and the rest are joined before decoding, so words at a chunk's edge are
read with context on both sides. A clip's chunks stay in one batch (`batch_size` counts chunks).
Without chunking, a clip longer than `max_duration_s` is a row error (its attention would grow with the
square of its length).

`return_timestamps = "char"` or `"word"` adds the column `chunks`: each character or word with the seconds it
starts and ends at, from the frames the CTC tokenizer reads it off, as transformers' pipeline gives them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from batchinfer.errors import ModelError
from batchinfer.tasks.base import AudioTask, Encoded, object_rows
from batchinfer.tasks.generative import GENERATION_KEYS, GenerationOptions

CHUNKS = pa.list_(pa.struct([("text", pa.string()), ("start", pa.float64()), ("end", pa.float64())]))
WHISPER_ONLY = ("language", "translate", *GENERATION_KEYS, "stop")  # options a CTC model has no use for


class SpeechRecognitionOptions(GenerationOptions):
    """CTC and Whisper models' options; the generation options (GenerationOptions) apply to Whisper only."""

    chunk_length_s: float | None = Field(None, gt=0, description="cut long audio into chunks of this many "
                                                                "seconds (default: each clip whole)")
    stride_length_s: float | tuple[float, float] | None = Field(
        None, description="seconds each chunk overlaps its neighbours by, left and right (default: "
                          "chunk_length_s / 6)")
    max_duration_s: float | None = Field(60.0, gt=0, description="without chunking, the longest clip in "
                                                                 "seconds; a longer one is a row error")
    return_timestamps: bool | Literal["char", "word"] | None = Field(
        None, description="add the column chunks: CTC models \"char\" or \"word\" (each with its start and end "
                          "in seconds); Whisper models true (segments)")
    language: str | None = Field(None, description="Whisper: the spoken language (\"en\", \"french\", ...; "
                                                   "default: detected per clip)")
    translate: bool = Field(False, description="Whisper: translate into English instead of transcribing")

    @field_validator("stride_length_s")
    @classmethod
    def _two_sides(cls, value):
        if isinstance(value, (int, float)):
            value = (float(value), float(value))
        if value is not None and (len(value) != 2 or min(value) < 0):
            raise ValueError("stride_length_s is a number of seconds, or [left, right], not negative")
        return value


class SpeechRecognition(AudioTask):
    name = "automatic-speech-recognition"
    aliases = ("asr",)
    auto_class = "AutoModelForCTC"
    output_name = "logits"
    sequence_output = True
    writes_text = True
    Options = SpeechRecognitionOptions
    roles = ("audio",)
    required_roles = ("audio",)
    columns = ("text", "chunks")  # chunks with return_timestamps (columns_for)
    call_options = frozenset({"batch_size", "chunk_length_s", "stride_length_s", "return_timestamps",
                              "generate_kwargs", "language", "task", "translate", *GENERATION_KEYS, "max_length"})

    def __init__(self, config: dict[str, Any], processor: Any, options: SpeechRecognitionOptions | None = None,
                 **kwargs: Any) -> None:
        super().__init__(config, processor, options, **kwargs)
        self.check_options()
        if self.tokenizer is None:
            raise ModelError("automatic-speech-recognition needs the model's tokenizer (vocab.json)")
        self._chunking = self._chunk_sizes()

    def check_options(self) -> None:
        """A CTC model reads characters off frames: Whisper's options and segment timestamps mean nothing to it."""
        o = self.options
        given = [k for k in WHISPER_ONLY if getattr(o, k) not in (None, False, [])]
        if given:
            raise ModelError(f"model.{given[0]} applies to Whisper-shaped (encoder-decoder) speech models; this "
                             "model is a CTC model", hint=f"remove {', '.join('model.' + k for k in given)}")
        if o.return_timestamps is True:
            raise ModelError("model.return_timestamps = true (segments) is for Whisper-shaped models; a CTC model "
                             "gives \"char\" or \"word\" timestamps", hint="set model.return_timestamps = \"word\"")

    @classmethod
    def columns_for(cls, options: SpeechRecognitionOptions) -> tuple[str, ...]:
        return cls.columns if getattr(options, "return_timestamps", None) else cls.columns[:1]

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        archs = config.get("architectures") or []
        if archs and not any(a.endswith("ForCTC") for a in archs):
            raise ModelError(f"model {model_name} is a {', '.join(archs)}, not a CTC or Whisper speech recognition "
                             "model", hint="use a *ForCTC model (wav2vec2, HuBERT, ...) or a Whisper model")

    @classmethod
    def from_call(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A call takes any length, as transformers does (a job stops at max_duration_s); `generate_kwargs`
        (Whisper's language and task, beams, ...) are options too."""
        kwargs = {**kwargs, **(kwargs.get("generate_kwargs") or {})}
        if kwargs.get("task") is not None:
            if kwargs["task"] not in ("transcribe", "translate"):
                raise ValueError(f"task = {kwargs['task']!r}: Whisper's task is 'transcribe' or 'translate'")
            kwargs["translate"] = kwargs["task"] == "translate"
        return {**super().from_call(kwargs), "max_duration_s": None}

    # -- chunks ------------------------------------------------------------------------------------
    def chunk_align(self) -> int:
        """Chunks and strides are whole multiples of this many samples (a CTC model's frame)."""
        return self.samples_per_frame()

    def _chunk_sizes(self) -> tuple[int, int, int] | None:
        """(chunk, left stride, right stride) in samples, on the model's frame grid, as transformers."""
        seconds = self.options.chunk_length_s
        if not seconds:
            return None
        left, right = self.options.stride_length_s or (seconds / 6, seconds / 6)
        align = self.chunk_align()
        chunk, left, right = (int(round(s * self.sampling_rate / align) * align) for s in (seconds, left, right))
        if chunk < left + right:
            raise ModelError(f"chunk_length_s = {seconds:g} is not longer than its strides "
                             f"({self.options.stride_length_s or 'a sixth each side'})")
        return chunk, left, right

    def chunks(self, samples: int) -> list[tuple[int, int, int, int]]:
        """(start, end, left stride, right stride) of each chunk of a clip of `samples`."""
        if self._chunking is None:
            return [(0, samples, 0, 0)]
        chunk, left, right = self._chunking
        out = []
        for start in range(0, samples, chunk - left - right):
            end = min(start + chunk, samples)
            last = start + chunk >= samples
            stride_left = 0 if start == 0 else left
            if end - start > stride_left:
                out.append((start, end, stride_left, 0 if last else right))
            if last:
                break
        return out

    def inputs_per_row(self, encoded: Encoded) -> np.ndarray:
        return np.fromiter((len(self.chunks(int(n))) for n in encoded.kept), dtype=np.int64, count=len(encoded.kept))

    def check_rows(self, clips: list[Any]) -> dict[int, str]:
        if self._chunking is not None:
            return {}
        return self.too_long(clips, self.options.max_duration_s, "model.max_duration_s",
                             "set model.chunk_length_s (e.g. 30) to transcribe long audio in chunks")

    # -- the three phases --------------------------------------------------------------------------
    def preprocess(self, clips: list[np.ndarray]) -> dict[str, np.ndarray]:
        pieces, rows, strides = [], [], []
        for row, clip in enumerate(clips):
            for start, end, left, right in self.chunks(len(clip)):
                pieces.append(clip[start:end])
                rows.append(row)
                strides.append((end - start, left, right))
        out = super().preprocess(pieces)
        return {**out, "row": np.asarray(rows, np.int64), "stride": np.asarray(strides, np.int64).reshape(-1, 3),
                "rows": np.int64(len(clips))}

    def forward(self, backend, inputs: dict[str, np.ndarray], *, keys: np.ndarray, values: list[Any]) -> dict:
        model_inputs = {k: v for k, v in inputs.items() if k not in ("row", "stride", "rows")}
        logits = super().forward(backend, model_inputs, keys=keys, values=values)["logits"]
        return {"tokens": [np.asarray(chunk).argmax(-1) for chunk in logits]}

    def postprocess(self, outputs, inputs):
        align = self.samples_per_frame()
        per_row: list[list[np.ndarray]] = [[] for _ in range(int(inputs["rows"]))]
        for tokens, row, (samples, left, right) in zip(outputs["tokens"], inputs["row"], inputs["stride"]):
            if self._chunking is not None:  # the chunk's frames less its strides, as transformers rescales them
                frames = int(round(samples / align))
                tokens = tokens[int(round(left / samples * frames)): frames - int(round(right / samples * frames))]
            per_row[row].append(tokens)
        ids = [np.concatenate(parts).tolist() for parts in per_row]
        out = {"text": np.array([self.tokenizer.decode(i, skip_special_tokens=False) for i in ids], dtype=object)}
        if self.options.return_timestamps:
            out["chunks"] = object_rows([self._offsets(i) for i in ids])
        return out

    def _offsets(self, ids: list[int]) -> list[dict[str, Any]]:
        """Each character (or word) with its start and end in seconds, as transformers' pipeline gives them."""
        offsets = self.tokenizer.decode(ids, skip_special_tokens=False, output_char_offsets=True)["char_offsets"]
        kind = self.options.return_timestamps
        if kind == "word":
            offsets = self.tokenizer._get_word_offsets(offsets, self.tokenizer.replace_word_delimiter_char)
        align, rate = self.samples_per_frame(), self.sampling_rate  # frames * samples / rate, as transformers
        return [{"text": o[kind], "start": float(o["start_offset"] * align / rate),
                 "end": float(o["end_offset"] * align / rate)} for o in offsets]

    def output_schema(self) -> pa.Schema:
        fields = [("text", pa.string())] + ([("chunks", CHUNKS)] if self.options.return_timestamps else [])
        return pa.schema(fields)

    def to_arrow(self, results):
        out = {"text": pa.array(results["text"].tolist(), pa.string())}
        if self.options.return_timestamps:
            out["chunks"] = pa.array(results["chunks"].tolist(), CHUNKS)
        return out

    def transformers_rows(self, outputs, inputs, values, call):
        """{"text"}, and with timestamps transformers' "chunks": [{"text", "timestamp": (start, end)}]."""
        out = self.postprocess(outputs, inputs)
        if not self.options.return_timestamps:
            return [{"text": t} for t in out["text"].tolist()]
        return [{"text": t, "chunks": [{"text": c["text"], "timestamp": (c["start"], c["end"])} for c in chunks]}
                for t, chunks in zip(out["text"].tolist(), out["chunks"].tolist())]
