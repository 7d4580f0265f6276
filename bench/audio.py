"""Audio throughput: batchinfer's automatic-speech-recognition and audio-classification against transformers'
pipeline, side by side, in seconds of audio per second (the real-time factor).

- `--task asr`: a wav2vec2-base-shaped CTC model (12 layers, 768 wide, the standard 7-layer convolutional
  front end; random weights, the CTC head scaled so that argmax margins are clear), recordings of 20-60 s of
  synthetic audio (tones that change every 0.7 s over noise), `chunk_length_s` 10 in both (transformers'
  stride default, a sixth), batch 8 chunks.
- `--task whisper`: a whisper-tiny-shaped model (4 + 4 layers, 384 wide, 1,500 encoder positions, a 51,866-token
  vocabulary; random weights scaled as the tests' tiny Whisper, tests/tiny_audio.py), clips of 5-29 s (each
  within the 30 s window), greedy, English, 48 new tokens at most, batch 8 in both.
- `--task classification`: the sample model `sample:spoken-digits` (a small AST) on the 200 sample clips of
  `sample_data/spoken_digits/` (1.5 s each), batch 32.

Each row runs in its own process; rows are interleaved over --repeats; the table gives medians, and each
row's agreement with the pipeline (equal texts, or equal labels).

    python bench/audio.py --task asr --recordings 8 --repeats 3
    python bench/audio.py --task whisper --recordings 24 --repeats 3
    python bench/audio.py --task classification --repeats 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import machine, run_child  # noqa: E402

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
RATE = 16000
ROWS = ["transformers pipeline", "batchinfer torch", "batchinfer ort", "batchinfer openvino"]


def build_ctc(root: Path) -> Path:
    import torch
    import transformers

    folder = root / "wav2vec2-base-ctc"
    if (folder / "config.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    letters = list("abcdefghijklmnopqrstuvwxyz'")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, **{c: i + 5 for i, c in enumerate(letters)}}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    transformers.Wav2Vec2CTCTokenizer(str(folder / "vocab.json")).save_pretrained(str(folder))
    transformers.Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(str(folder))
    config = transformers.Wav2Vec2Config(vocab_size=len(vocab), pad_token_id=0)  # wav2vec2-base's shape
    torch.manual_seed(0)
    model = transformers.Wav2Vec2ForCTC(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(30)
    model.save_pretrained(str(folder))
    return folder


def build_whisper(root: Path) -> Path:
    from tests.tiny_audio import build_whisper as build

    folder = root / "whisper-tiny-shape"
    return folder if (folder / "config.json").exists() else build(folder, shape="whisper-tiny")


def recordings(count: int, seed: int = 0, shortest: float = 20, longest: float = 60) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        seconds = float(rng.uniform(shortest, longest))
        t = np.arange(int(0.7 * RATE)) / RATE
        parts = [0.3 * np.sin(2 * np.pi * rng.uniform(100, 1500) * t) + 0.1 * rng.standard_normal(len(t))
                 for _ in range(int(seconds / 0.7) + 1)]
        out.append(np.concatenate(parts)[: int(seconds * RATE)].astype(np.float32))
    return out


def digit_clips() -> list[np.ndarray]:
    import csv

    import soundfile

    folder = ROOT / "sample_data" / "spoken_digits"
    with open(folder / "digits.csv") as fh:
        return [soundfile.read(folder / row["path"], dtype="float32")[0] for row in csv.DictReader(fh)]


WHISPER_CALL = {"generate_kwargs": {"language": "en", "num_beams": 1, "max_new_tokens": 48}}


def run_row(row: str, task: str, model: str, recordings_n: int) -> dict:
    clips = {"asr": lambda: recordings(recordings_n), "whisper": lambda: recordings(recordings_n, 1, 5, 29),
             "classification": digit_clips}[task]()
    seconds_of_audio = sum(len(c) for c in clips) / RATE
    name = "audio-classification" if task == "classification" else "automatic-speech-recognition"
    call = {"asr": {"chunk_length_s": 10.0}, "whisper": WHISPER_CALL, "classification": {}}[task]
    batch = 32 if task == "classification" else 8
    top = {"top_k": 1} if task == "classification" else {}
    if row == "transformers pipeline":
        import torch
        from transformers import pipeline

        torch.set_num_threads(2)
        if task == "classification":
            from batchinfer.model.ref import resolve_model

            model = str(resolve_model(model).path)
        pipe = pipeline(name, model=model, device="cpu")
        started = time.perf_counter()
        out = pipe([c.copy() for c in clips], batch_size=batch, **call, **top)
        labels = [o["text"] for o in out] if task != "classification" else [o[0]["label"] for o in out]
    else:
        import batchinfer

        asr = batchinfer.pipeline(name, model=model, accelerator=row.split()[-1])
        asr([clips[0][: RATE * 2]], **call)  # loads (and exports, first time) outside the timing
        started = time.perf_counter()
        out = asr(clips, batch_size=batch, **call, **top)
        labels = [o["text"] for o in out] if task != "classification" else [o[0]["label"] for o in out]
    seconds = time.perf_counter() - started
    return {"rows": len(clips), "audio_seconds": seconds_of_audio, "seconds": seconds, "labels": labels}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", choices=["asr", "whisper", "classification"], default="asr")
    parser.add_argument("--recordings", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "batchinfer-bench-audio"))
    parser.add_argument("--row")
    parser.add_argument("--model")
    args = parser.parse_args()
    builders = {"asr": build_ctc, "whisper": build_whisper}
    model = args.model or (str(builders[args.task](Path(args.root))) if args.task in builders else "sample:spoken-digits")
    if args.row:
        print(json.dumps(run_row(args.row, args.task, model, args.recordings)))
        return
    child = ["--task", args.task, "--recordings", str(args.recordings), "--root", args.root, "--model", model]
    results: dict[str, list[dict]] = {row: [] for row in ROWS}
    for _ in range(args.repeats):
        for row in ROWS:
            results[row].append(run_child(HERE, row, child))
            last = results[row][-1]
            print(f"  {row}: {last['audio_seconds'] / last['seconds']:.1f} s of audio per second", file=sys.stderr)
    audio = results[ROWS[0]][0]["audio_seconds"]
    print(f"{machine()}; {args.task}, {results[ROWS[0]][0]['rows']} clips, {audio:.0f} s of audio, "
          f"median of {args.repeats}\n")
    print("| row | audio seconds per second (real-time factor) | ratio to first row | peak RSS MB | equal to "
          "transformers pipeline |")
    print("|---|---|---|---|---|")
    first = None
    reference = results[ROWS[0]][0]["labels"]
    for row in ROWS:
        rate = statistics.median(r["audio_seconds"] / r["seconds"] for r in results[row])
        first = first or rate
        rss = statistics.median(r["peak_rss_mb"] for r in results[row])
        same = sum(a == b for a, b in zip(results[row][0]["labels"], reference)) / len(reference)
        print(f"| {row} | {rate:.1f} | {rate / first:.2f}x | {rss:.0f} | {same:.1%} |")


if __name__ == "__main__":
    main()
