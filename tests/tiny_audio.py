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


def long_audio(seconds: float, seed: int = 1, *, piece: float = 0.7, top: float = 1500,
               noise: float = 0.2) -> np.ndarray:
    """Tones that change every `piece` seconds (up to `top` Hz) over noise: different tokens along the clip."""
    rng = np.random.default_rng(seed)
    parts = [tone(piece, freq=float(rng.uniform(100, top)), seed=i, noise=noise)
             for i in range(int(seconds / piece) + 1)]
    return np.concatenate(parts)[: int(seconds * RATE)]


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


WHISPER_LANGUAGES = ("en", "fr", "de")
WHISPER_SHAPES = {  # "tiny": the tests' (a 2 s window); "whisper-tiny": openai/whisper-tiny's sizes (benchmarks)
    "tiny": dict(d_model=32, layers=2, heads=2, ffn=37, positions=100, target=64, window=2),
    "whisper-tiny": dict(d_model=384, layers=4, heads=6, ffn=1536, positions=1500, target=448, window=30),
}


def build_whisper(path: Path, seed: int = 11, shape: str = "tiny") -> Path:
    """A random Whisper with a byte-level tokenizer of its own, the special tokens (languages, tasks,
    timestamps) and a hub-shaped generation config. Its weights are scaled so that the audio steers the tokens
    (the convolutions, cross-attention) and lower-case letters win over bytes and special tokens (the texts
    are readable and differ between clips). `shape = "whisper-tiny"`: whisper-tiny's sizes, with its 50,257 text
    tokens and every language, so that the special tokens have whisper's ids."""
    import torch
    import transformers
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    size = WHISPER_SHAPES[shape]
    languages = WHISPER_LANGUAGES if shape == "tiny" else tuple(LANGUAGES)
    path.mkdir(parents=True, exist_ok=True)
    chars = bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(chars.values())}
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("a", "n"), ("i", "n"), ("o", "n"), ("e", "r"), ("Ġ", "a")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    count = 0
    while shape != "tiny" and len(vocab) < 50257:  # filler words (decoding only reads them)
        count += 1
        n, word = count, ""
        while n:
            n, letter = divmod(n, 26)
            word += chr(97 + letter)
        vocab.setdefault("Ġ" + word + "q", len(vocab))
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    specials = ["<|endoftext|>", "<|startoftranscript|>", *[f"<|{code}|>" for code in languages],
                "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
                "<|notimestamps|>"]
    tokenizer = transformers.WhisperTokenizer(str(path / "vocab.json"), str(path / "merges.txt"),
                                              pad_token="<|endoftext|>")
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in specials}
    end = ids["<|endoftext|>"]
    config = transformers.WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=80, encoder_layers=size["layers"], decoder_layers=size["layers"],
        encoder_attention_heads=size["heads"], decoder_attention_heads=size["heads"], d_model=size["d_model"],
        encoder_ffn_dim=size["ffn"], decoder_ffn_dim=size["ffn"], max_source_positions=size["positions"],
        max_target_positions=size["target"], pad_token_id=end, bos_token_id=end, eos_token_id=end,
        decoder_start_token_id=ids["<|startoftranscript|>"], suppress_tokens=[], begin_suppress_tokens=None)
    torch.manual_seed(seed)
    model = transformers.WhisperForConditionalGeneration(config).eval()
    letters = [i for i, b in enumerate(chars) if 97 <= b <= 122 or b in (32, 39)]
    with torch.no_grad():
        embed = model.model.decoder.embed_tokens.weight  # the output projection too (tied)
        embed.mul_(3)
        others = torch.ones(len(embed), dtype=torch.bool)
        others[letters] = False
        embed[others] *= 0.3
        model.model.encoder.conv1.weight.mul_(30)
        model.model.encoder.conv2.weight.mul_(30)
        for layer in model.model.decoder.layers:
            layer.encoder_attn.v_proj.weight.mul_(5)
            layer.encoder_attn.out_proj.weight.mul_(5)
            layer.encoder_attn.k_proj.weight.mul_(3)
    model.save_pretrained(str(path))
    transformers.GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"], eos_token_id=end, pad_token_id=end, bos_token_id=end,
        no_timestamps_token_id=ids["<|notimestamps|>"], is_multilingual=True,
        lang_to_id={f"<|{code}|>": ids[f"<|{code}|>"] for code in languages},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        suppress_tokens=[ids["<|startoflm|>"], ids["<|startofprev|>"]], begin_suppress_tokens=[vocab["Ġ"], end],
        max_length=size["target"], max_initial_timestamp_index=50, return_timestamps=False).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    transformers.WhisperFeatureExtractor(feature_size=80, chunk_length=size["window"]).save_pretrained(str(path))
    return path
