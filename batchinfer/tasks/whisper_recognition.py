"""automatic-speech-recognition with Whisper-shaped encoder-decoder models (`WhisperForConditionalGeneration`):
the log-mel features of a 30 s window go through the encoder once, and Whisper's own `generate` (its language
and task tokens, suppressed tokens, timestamp rules) decodes on any backend: the model itself on torch, three
graphs on ort and openvino (the encoder, the cross-attention keys and values, the decoder step:
`model/seq2seq_export.py`). The text and the segments are what transformers' pipeline makes of the tokens
(the Whisper tokenizer's ASR decoding).

Options beside the shared ones (`speech_recognition.py`): `language` (default: detected per clip), `translate`
(into English), `return_timestamps = true` (the column `chunks`: segments with their start and end in seconds;
the last may have no end), and the generation options (`num_beams`, `max_new_tokens`, ...). A job decodes
greedily unless it asks for beams; a `batchinfer.pipeline` call takes transformers' pipeline defaults (5 beams
unless the model's generation config says otherwise), as the transformers pipeline does.

Audio longer than the model's window (30 s) is cut into chunks with `chunk_length_s` (e.g. 30) and
`stride_length_s`, as transformers' pipeline cuts it, and the chunks' tokens are stitched where they overlap;
without chunking such a clip is a row error.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Any

import numpy as np

from batchinfer.errors import ModelError
from batchinfer.tasks.base import Encoded, MediaTask, Task, object_rows
from batchinfer.tasks.generative import GenerativeTask
from batchinfer.tasks.speech_recognition import SpeechRecognition, SpeechRecognitionOptions


class WhisperRecognition(SpeechRecognition, GenerativeTask):
    variant_of = "automatic-speech-recognition"
    auto_class = "AutoModelForSpeechSeq2Seq"
    parts = ("encoder", "cross", "decoder")  # three graphs where the backend runs graphs (seq2seq_export.py)
    generates = True
    encodes_once = False
    sequence_output = False
    keeps_call_batches = True
    gate_rows = 32  # each compared row is decoded twice (the reduced model and fp32)
    transformers_defaults = {"max_new_tokens": 256, "num_beams": 5}  # transformers' ASR pipeline's

    def __init__(self, config: dict[str, Any], processor: Any, options: SpeechRecognitionOptions | None = None, *,
                 tokenizer: Any = None, max_length: int | None = None, **kwargs: Any) -> None:
        MediaTask.__init__(self, config, processor, options, tokenizer=tokenizer,
                           **{k: v for k, v in kwargs.items() if k != "max_length"})
        self.check_options()
        self._decoder = None
        self.generation = self._generation_config()
        self.max_new_tokens = int(self.generation.max_new_tokens or self.generation.max_length or 0)
        self._chunking = self._chunk_sizes()

    def check_options(self) -> None:
        o = self.options
        if o.return_timestamps in ("char", "word"):
            raise ModelError(f"model.return_timestamps = {o.return_timestamps!r} is not offered for Whisper models: "
                             "they give segments", hint="set model.return_timestamps = true")
        if o.do_sample:
            raise ModelError("model.do_sample is not offered for Whisper models (its generate samples with a "
                             "temperature fallback of its own)", hint="decode greedily, or set model.num_beams")
        if o.stop:
            raise ModelError("model.stop is not offered for speech recognition", hint="remove model.stop")

    @classmethod
    def fits(cls, config: dict[str, Any]) -> bool:
        return config.get("model_type") == "whisper"

    @classmethod
    def check_model(cls, config: dict[str, Any], model_name: str) -> None:
        if config.get("model_type") != "whisper":
            raise ModelError(f"model {model_name} is not a Whisper model", hint="use a Whisper-shaped model")

    @classmethod
    def from_call(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The shared options, and transformers' pipeline defaults for generation (a call, not a job)."""
        return {**super().from_call(kwargs), "transformers_max_length": int(kwargs.get("max_length") or 0)}

    # -- sizes ---------------------------------------------------------------------------------------
    def chunk_align(self) -> int:
        return 1  # the features are made of each chunk's samples: no frame grid to keep

    def positions(self) -> int:
        """The decoder's positions: prompt (language, task) and new tokens together."""
        return int(self.config.get("max_target_positions") or 448)

    def window_s(self) -> float:
        """Seconds of audio the encoder takes at once (the feature extractor's chunk_length: 30)."""
        return float(getattr(self.processor, "chunk_length", 30) or 30)

    def check_rows(self, clips: list[Any]) -> dict[int, str]:
        if self._chunking is not None:
            return {}
        limit = min(self.options.max_duration_s or self.window_s(), self.window_s())
        return self.too_long(clips, limit, "model.max_duration_s" if limit < self.window_s() else "the Whisper window",
                             f"set model.chunk_length_s = {self.window_s():g} to transcribe long audio in chunks")

    def batch_lengths(self, encoded: Encoded) -> np.ndarray:
        """Every clip (chunk) is one window of features, decoded to at most max_new_tokens."""
        return np.full(len(encoded.kept), self.max_new_tokens + int(self.window_s() * 50), dtype=np.int64)

    # -- the three phases ----------------------------------------------------------------------------
    def forward(self, backend, inputs: dict[str, np.ndarray], *, keys: np.ndarray, values: list[Any]) -> dict:
        import torch

        from batchinfer.generation.decode import decoder, model_config

        if self._decoder is None:
            self._decoder = decoder(backend, model_config(self.tokenizer.name_or_path), self.generation)
        o = self.options
        call: dict[str, Any] = {"return_timestamps": bool(o.return_timestamps)}
        if o.language:
            call["language"] = o.language
        if o.translate:
            call["task"] = "translate"
        features = torch.from_numpy(np.ascontiguousarray(inputs["input_features"], dtype=np.float32))
        with torch.inference_mode(), _quiet():
            out = self._decoder.generate(input_features=features, generation_config=copy.deepcopy(self.generation),
                                         **call)
        sequences = out["sequences"] if isinstance(out, dict) else out
        return {"tokens": [self._own(row) for row in sequences.numpy()]}

    def _own(self, row: np.ndarray) -> np.ndarray:
        """A row's tokens as generate gives them for the row alone: up to its end token, without the padding
        a batch adds after it."""
        ends = np.flatnonzero(row == self.generation.eos_token_id) if self.generation.eos_token_id is not None else []
        return row[: ends[0] + 1] if len(ends) else row

    def postprocess(self, outputs, inputs):
        rate = self.sampling_rate
        per_row: list[list[dict[str, Any]]] = [[] for _ in range(int(inputs["rows"]))]
        for tokens, row, (samples, left, right) in zip(outputs["tokens"], inputs["row"], inputs["stride"]):
            piece: dict[str, Any] = {"tokens": tokens[None, :]}
            if self._chunking is not None:  # in seconds, as transformers' pipeline hands strides to the tokenizer
                piece["stride"] = (int(samples) / rate, int(left) / rate, int(right) / rate)
            per_row[row].append(piece)
        stamps = bool(self.options.return_timestamps)
        precision = self.window_s() / int(self.config.get("max_source_positions") or 1500)
        texts, chunks = [], []
        for pieces in per_row:
            text, extra = self.tokenizer._decode_asr(pieces, return_timestamps=stamps, return_language=None,
                                                     time_precision=precision)
            texts.append(text)
            chunks.append([{"text": c["text"], "start": c["timestamp"][0], "end": c["timestamp"][1]}
                           for c in extra.get("chunks", [])])
        out = {"text": np.array(texts, dtype=object)}
        if stamps:
            out["chunks"] = object_rows(chunks)
        return out

    compare = Task.compare  # the share of equal texts (not GenerativeTask's generated_text)


@contextmanager
def _quiet():
    """Without the notes Whisper's generate writes on every call about its own config handling (suppressed
    tokens passed beside the config, max_length beside max_new_tokens, the features' mask): nothing a job can
    act on."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)
