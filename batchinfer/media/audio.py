"""Audio: decoded with soundfile (libsndfile: WAV, FLAC, OGG/Vorbis and Opus, MP3), mixed to mono (the mean of
the channels) and resampled to the model's `sampling_rate` with soxr (high quality), as float32 samples. The
model's feature extractor makes its inputs: raw samples (`input_values`, wav2vec2: any length) or features
of a fixed shape (AST's filter banks, Whisper's log-mel `input_features`).

Besides the shared layouts, a column may hold the Hugging Face datasets decoded struct
`{array, sampling_rate}` (and `path`), as `datasets.Audio(decode=True)` gives it.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from batchinfer.media import Medium, location, read_bytes


class AudioMedium(Medium):
    name = "audio"
    column_hint = ("an audio column holds encoded bytes, {bytes, path} or {array, sampling_rate} structs, "
                   "or paths")
    struct_fields = frozenset({"bytes", "path", "array"})

    def load_processor(self, path: str, trust_remote_code: bool = False) -> Any:
        from transformers import AutoFeatureExtractor

        return AutoFeatureExtractor.from_pretrained(path, trust_remote_code=trust_remote_code)

    def model_inputs(self, processor: Any) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """The feature extractor's first input and its shape per clip, read off 1 s and 2 s of silence (an
        axis that differs takes any length)."""
        rate = int(processor.sampling_rate)
        name = processor.model_input_names[0]
        shapes = [np.asarray(processor([np.zeros(rate * s, np.float32)], sampling_rate=rate,
                                       return_tensors="np")[name]).shape[1:] for s in (1, 2)]
        return (name,), tuple(int(a) if a == b else -1 for a, b in zip(*shapes))

    def dummy(self, shape: tuple[int, ...]):
        import torch

        sizes = [16000 if s < 0 else s for s in shape]
        axes = {0: "batch"} | {i + 1: f"axis{i + 1}" for i, s in enumerate(shape) if s < 0}
        return torch.randn((2, *sizes)) * 0.1, axes

    def decode(self, value: Any, *, base: str, fs, processor: Any) -> np.ndarray:
        rate = int(processor.sampling_rate)
        if isinstance(value, dict) and value.get("array") is not None:
            given = value.get("sampling_rate")
            if not given:
                raise ValueError("audio struct has an array but no sampling_rate")
            return _checked(_resampled(_mono(np.asarray(value["array"], dtype=np.float32)), int(given), rate))
        data = read_bytes(value, base=base, fs=fs)
        if data is None:
            raise ValueError("audio is null")
        return _checked(decode_audio(data, rate, where=location(value)))

    def call_value(self, value: Any, processor: Any) -> Any:
        """As transformers' audio pipelines take them: samples at the model's rate (numpy or torch), a dict of
        `raw` or `array` and `sampling_rate` (resampled), encoded bytes, or a path or URL."""
        if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # a torch tensor
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            return _checked(_mono(value.astype(np.float32, copy=False)))
        if isinstance(value, dict) and ("raw" in value or "array" in value):
            samples = value["raw"] if "raw" in value else value["array"]
            return self.decode({"array": samples, "sampling_rate": value.get("sampling_rate")}, base="", fs=None,
                               processor=processor)
        if isinstance(value, (bytes, bytearray, str)):
            return self.decode(value, base="", fs=None, processor=processor)
        raise TypeError("an audio input must be samples (numpy), a dict of array and sampling_rate, bytes, a path "
                        f"or a URL, not {type(value).__name__}")


def decode_audio(data: bytes, rate: int, *, where: str | None = None) -> np.ndarray:
    """Encoded audio as mono float32 samples at `rate`."""
    import soundfile

    try:
        samples, given = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ValueError(f"audio cannot be decoded{f' ({where})' if where else ''}: {exc}") from None
    return _resampled(samples.mean(axis=1, dtype=np.float32), int(given), rate)


def _mono(samples: np.ndarray) -> np.ndarray:
    """1-D samples, or (channels, samples) with one or two channels mixed (as transformers reads arrays)."""
    if samples.ndim == 1:
        return samples
    if samples.ndim == 2 and samples.shape[0] <= 2:
        return samples.mean(axis=0, dtype=np.float32)
    raise ValueError(f"audio samples of shape {samples.shape}: give (samples,) or (channels, samples) with 1 or 2 "
                     "channels")


def _resampled(samples: np.ndarray, given: int, rate: int) -> np.ndarray:
    if given == rate or not len(samples):
        return np.ascontiguousarray(samples, dtype=np.float32)
    import soxr

    return soxr.resample(samples, given, rate, quality="HQ").astype(np.float32, copy=False)


def _checked(samples: np.ndarray) -> np.ndarray:
    if not len(samples):
        raise ValueError("audio is empty (0 samples)")
    if not np.isfinite(samples).all():
        raise ValueError("audio has samples that are not finite numbers (NaN or infinity)")
    return samples
