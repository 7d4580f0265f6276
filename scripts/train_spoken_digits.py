#!/usr/bin/env python
"""Train the sample audio-classification model ``batchinfer/model/samples/spoken-digits``.

A tiny ``transformers.ASTForAudioClassification`` (an audio spectrogram transformer: 64 log-mel bins, 1.5 s,
16 x 16 patches) trained from random initialisation to tell the ten English digit words "zero" ... "nine"
apart, on speech this script synthesises with espeak-ng (Debian: ``apt-get install espeak-ng``):

- eight English accents of espeak-ng (en-gb, en-us, Scottish, RP, Lancastrian, West Midlands, Caribbean,
  New York) times its voice variants (m1-m8, f1-f5, klatt, croak, whisper, ...), a random speed (110-230
  words per minute) and pitch per clip, mixed with noise at 5-30 dB SNR, placed at a random
  offset in the 1.5 s window, random gain;
- held out: 20 of espeak-ng's voice variants (drawn with the seed), which no training clip uses, in every
  accent: every held-out clip is a voice the model never heard. The held-out accuracy is printed here; 200
  held-out clips are written to ``sample_data/spoken_digits/`` (FLAC files and ``digits.csv``: id, path, digit) for
  ``jobs/spoken_digits.toml``.

Run from the repo root (deterministic for a given seed and thread count; about 13 minutes on 2 cores):

    python scripts/train_spoken_digits.py
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch
import transformers

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "batchinfer" / "model" / "samples" / "spoken-digits"
SAMPLE = ROOT / "sample_data" / "spoken_digits"
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
RATE = 16000
SECONDS = 1.5
ACCENTS = ["en-gb", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-us-nyc", "en-029",
           "en-gb-x-gbcwmd"]
VARIANTS_DIR = Path("/usr/lib/x86_64-linux-gnu/espeak-ng-data/voices/!v")


def variants() -> list[str]:
    found = sorted(p.name for p in VARIANTS_DIR.iterdir() if p.is_file() and " " not in p.name)
    return found or ["m1", "m2", "m3", "f1", "f2"]


def speak(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's WAV of `word`, as float32 at 16 kHz, silence trimmed."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", f"{tmp}/out.wav", word],
                       check=True, capture_output=True)
        samples, rate = soundfile.read(f"{tmp}/out.wav", dtype="float32")
    samples = soxr.resample(samples, rate, RATE).astype(np.float32)
    loud = np.flatnonzero(np.abs(samples) > 0.02 * max(1e-6, float(np.abs(samples).max())))
    return samples[loud[0]: loud[-1] + 1] if len(loud) else samples


def clip(word: str, voice: str, rng: random.Random) -> np.ndarray:
    """One training or held-out clip: the word at a random offset in the window, noise, gain."""
    speech = speak(word, voice, rng.randint(110, 230), rng.randint(20, 80))
    width = int(SECONDS * RATE)
    speech = speech[:width]
    out = np.zeros(width, np.float32)
    start = rng.randint(0, width - len(speech))
    out[start: start + len(speech)] = speech
    noise = np.random.default_rng(rng.randrange(2**32)).standard_normal(width).astype(np.float32)
    snr = rng.uniform(5, 30)
    power = float(np.mean(speech ** 2)) or 1e-6
    out += noise * np.sqrt(power / 10 ** (snr / 10))
    return (out * rng.uniform(0.3, 1.0) / max(1e-6, float(np.abs(out).max()))).astype(np.float32)


def make_set(accents: list[str], voice_variants: list[str], repeats: int, seed: int) -> tuple[list, list]:
    jobs = [(word, f"{accent}+{variant}", seed * 1_000_003 + i)
            for i, (accent, variant, word, _) in enumerate(
                (a, v, w, r) for a in accents for v in voice_variants for w in WORDS for r in range(repeats))]
    with ThreadPoolExecutor(4) as pool:
        clips = list(pool.map(lambda j: clip(j[0], j[1], random.Random(j[2])), jobs))
    return clips, [WORDS.index(j[0]) for j in jobs]


def build_model(seed: int) -> tuple[transformers.ASTForAudioClassification, transformers.ASTFeatureExtractor]:
    frames = int(SECONDS * 100)
    extractor = transformers.ASTFeatureExtractor(num_mel_bins=64, max_length=frames, sampling_rate=RATE)
    config = transformers.ASTConfig(hidden_size=96, num_hidden_layers=3, num_attention_heads=4, intermediate_size=192,
                                    patch_size=16, frequency_stride=12, time_stride=12, max_length=frames,
                                    num_mel_bins=64, num_labels=len(WORDS), id2label=dict(enumerate(WORDS)),
                                    label2id={w: i for i, w in enumerate(WORDS)}, hidden_dropout_prob=0.1,
                                    attention_probs_dropout_prob=0.0)
    torch.manual_seed(seed)
    return transformers.ASTForAudioClassification(config), extractor


def features(extractor, clips: list[np.ndarray]) -> torch.Tensor:
    out = []
    for start in range(0, len(clips), 256):
        out.append(extractor(clips[start: start + 256], sampling_rate=RATE, return_tensors="np")["input_values"])
    return torch.from_numpy(np.concatenate(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--repeats", type=int, default=2, help="clips per (accent, variant, word) in training")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(2)
    rng = random.Random(args.seed)
    all_variants = variants()
    rng.shuffle(all_variants)
    held_variants, train_variants = all_variants[:20], all_variants[20:]
    started = time.time()
    train_x, train_y = make_set(ACCENTS, train_variants, args.repeats, args.seed)
    held_x, held_y = make_set(ACCENTS, held_variants, 1, args.seed + 1)
    print(f"synthesised {len(train_x)} training and {len(held_x)} held-out clips in {time.time() - started:.0f} s")
    model, extractor = build_model(args.seed)
    x, y = features(extractor, train_x), torch.tensor(train_y)
    hx, hy = features(extractor, held_x), torch.tensor(held_y)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    steps = args.epochs * ((len(x) + 63) // 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for start in range(0, len(x), 64):
            idx = order[start: start + 64]
            batch = x[idx].clone()
            for row in batch:  # SpecAugment-style: two time and two frequency bands masked
                for _ in range(2):
                    t = int(torch.randint(0, batch.shape[1] - 20, (1,), generator=gen))
                    f = int(torch.randint(0, batch.shape[2] - 8, (1,), generator=gen))
                    row[t: t + int(torch.randint(0, 20, (1,), generator=gen)), :] = 0
                    row[:, f: f + int(torch.randint(0, 8, (1,), generator=gen))] = 0
            loss = torch.nn.functional.cross_entropy(model(input_values=batch).logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            held = torch.cat([model(input_values=hx[s: s + 256]).logits.argmax(-1) for s in range(0, len(hx), 256)])
        print(f"epoch {epoch + 1}: loss {total / len(x):.3f}, held-out accuracy {(held == hy).float().mean():.3f} "
              f"({time.time() - started:.0f} s)", flush=True)
    TARGET.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(str(TARGET))
    extractor.save_pretrained(str(TARGET))
    (TARGET / "head.json").write_text(json.dumps({"base": None, "trained_by": "scripts/train_spoken_digits.py",
                                                  "seed": args.seed}, indent=2) + "\n")
    SAMPLE.mkdir(parents=True, exist_ok=True)
    (SAMPLE / "clips").mkdir(exist_ok=True)
    order = random.Random(args.seed + 2).sample(range(len(held_x)), 200)
    with open(SAMPLE / "digits.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "path", "digit"])
        for n, i in enumerate(order):
            name = f"clips/{n:03d}.flac"
            soundfile.write(SAMPLE / name, held_x[i], RATE, format="FLAC", subtype="PCM_16")
            writer.writerow([n, name, WORDS[held_y[i]]])
    print(f"saved {TARGET} and {len(order)} held-out clips in {SAMPLE}")


if __name__ == "__main__":
    main()
