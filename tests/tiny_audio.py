"""Tiny random audio models (wav2vec2 for classification and CTC, AST) with their feature extractors, and
synthetic audio (tones, noise, silence, speech-like bursts) encoded as the formats soundfile writes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

RATE = 16000
LETTERS = list("abcdefghijklmnopqrstuvwxyz'")


def _wav2vec2_config(**extra):
    import transformers

    return transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        conv_dim=(16, 16, 16), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, feat_extract_norm="group", do_stable_layer_norm=False,
        mask_time_prob=0.0, layerdrop=0.0, hidden_dropout=0.0, attention_dropout=0.0, **extra)


def _extractor(path: Path, **extra) -> None:
    import transformers

    transformers.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=RATE, padding_value=0.0, do_normalize=True,
                                          return_attention_mask=False, **extra).save_pretrained(str(path))


def build_wav2vec2_classifier(path: Path, seed: int = 3) -> Path:
    import torch
    import transformers

    labels = ["yes", "no", "up", "down"]
    config = _wav2vec2_config(num_labels=4, classifier_proj_size=16, id2label=dict(enumerate(labels)),
                              label2id={v: i for i, v in enumerate(labels)})
    torch.manual_seed(seed)
    model = transformers.Wav2Vec2ForSequenceClassification(config).eval()
    with torch.no_grad():
        model.classifier.weight.mul_(20)  # clear margins between the labels' scores
    model.save_pretrained(str(path))
    _extractor(path)
    return path


def build_wav2vec2_ctc(path: Path, seed: int = 5) -> Path:
    import torch
    import transformers

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: i + 5 for i, c in enumerate(LETTERS)}}
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(path / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                                                  word_delimiter_token="|")
    config = _wav2vec2_config(vocab_size=len(vocab), pad_token_id=0, ctc_loss_reduction="mean")
    torch.manual_seed(seed)
    model = transformers.Wav2Vec2ForCTC(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(30)  # clear argmax margins: texts are comparable across runtimes
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    _extractor(path)
    return path


def build_ast(path: Path, seed: int = 7) -> Path:
    import torch
    import transformers

    labels = ["speech", "music", "noise"]
    config = transformers.ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                                    patch_size=16, frequency_stride=10, time_stride=10, max_length=100,
                                    num_mel_bins=16, num_labels=3, id2label=dict(enumerate(labels)),
                                    label2id={v: i for i, v in enumerate(labels)})
    torch.manual_seed(seed)
    model = transformers.ASTForAudioClassification(config).eval()
    with torch.no_grad():
        model.classifier.dense.weight.mul_(20)
    model.save_pretrained(str(path))
    transformers.ASTFeatureExtractor(num_mel_bins=16, max_length=100, sampling_rate=RATE).save_pretrained(str(path))
    return path


def tone(seconds: float, rate: int = RATE, freq: float = 440.0, seed: int = 0, noise: float = 0.05) -> np.ndarray:
    """A tone with a little noise and a gliding second partial (so clips differ)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    glide = freq * (1.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    wave = 0.4 * np.sin(2 * np.pi * freq * t) + 0.2 * np.sin(2 * np.pi * np.cumsum(glide) / rate)
    return (wave + noise * rng.standard_normal(len(t))).astype(np.float32)


def clips(count: int, seed: int = 0) -> list[np.ndarray]:
    """Clips at 16 kHz of 0.1 s to 3 s: tones, noise, near-silence, and a few of equal length."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        seconds = [0.1, 0.5, 1.0, 1.0, 2.2, 3.0][i % 6] if i < 6 else float(rng.uniform(0.2, 2.5))
        kind = i % 3
        if kind == 0:
            out.append(tone(seconds, freq=float(rng.uniform(150, 900)), seed=i))
        elif kind == 1:
            out.append((0.3 * rng.standard_normal(int(seconds * RATE))).astype(np.float32))
        else:
            out.append(tone(seconds, freq=float(rng.uniform(80, 300)), seed=i, noise=0.001) * 0.01)
    return out


def encoded(samples: np.ndarray, rate: int = RATE, fmt: str = "WAV", subtype: str | None = None,
            channels: int = 1) -> bytes:
    """`samples` written by soundfile as `fmt` (WAV, FLAC, OGG), with `channels` (a stereo copy is the same
    signal on the left and half of it on the right)."""
    import soundfile

    data = samples if channels == 1 else np.stack([samples, samples * 0.5], axis=1)
    buf = io.BytesIO()
    soundfile.write(buf, data, rate, format=fmt, subtype=subtype)
    return buf.getvalue()
