#!/usr/bin/env python
"""Train the sample text-generation model ``batchinfer/model/samples/dates``.

A tiny ``transformers.GPT2LMHeadModel`` trained from random initialisation to turn a date written in English
into ISO form:

    date: the twenty-third of March, nineteen ninety-four
    iso: 1994-03-23<|endoftext|>

The data is synthetic, made here from a seeded RNG: dates from 1900-01-01 to 2099-12-31 (valid days per
month, leap years included), each written in one of several phrasings ("March 23rd, 1994", "23 March 1994",
"the twenty-third of March, nineteen ninety-four", "March the twenty-third, two thousand and seven", ...),
with ordinal and cardinal day words, digits or words for the year, and a few spelling variations (lower-case
or abbreviated month names). A set of dates is drawn first and held out: no training row has one of those
exact dates (in any phrasing). The first rows of the held-out set are written to
``sample_data/dates/dates.csv`` (id, text, iso); the rest only widen the held-out score printed here.

The tokenizer is a byte-level BPE (``tokenizers``) trained on the training prompts and answers, with every
digit its own piece (a space may go with it: " 1"), so years, months and days are spelled digit by digit.
The loss is on the answer tokens and the end token only. Held-out exact match is measured with plain
``transformers`` ``generate`` (greedy) over the saved folder.

Run from the repo root (deterministic for a given seed and thread count):

    python scripts/train_dates.py
"""

from __future__ import annotations

import argparse
import calendar
import csv
import datetime as dt
import json
import math
import random
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "batchinfer" / "model" / "samples" / "dates"
CSV_PATH = REPO / "sample_data" / "dates" / "dates.csv"
SEED = 20240601
EOS = "<|endoftext|>"
POSITIONS = 64
MAX_NEW_TOKENS = 12
MAX_FOLDER_BYTES = 6 * 1024 * 1024
FIRST, LAST = dt.date(1900, 1, 1), dt.date(2099, 12, 31)

MONTHS = list(calendar.month_name)[1:]
ABBREVIATIONS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sept", "Oct", "Nov", "Dec"]
ONES = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
ORDINAL_ONES = ["", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
                "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth",
                "eighteenth", "nineteenth"]
ORDINAL_TENS = {20: "twentieth", 30: "thirtieth"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# -- numbers in words ------------------------------------------------------------------------------------

def cardinal(n: int) -> str:
    """1..99 in words: "seven", "twenty-three"."""
    if n < 20:
        return ONES[n]
    tens, ones = divmod(n, 10)
    return TENS[tens] + (f"-{ONES[ones]}" if ones else "")


def ordinal(n: int) -> str:
    """1..31 in words: "first", "twenty-third", "thirtieth"."""
    if n < 20:
        return ORDINAL_ONES[n]
    tens, ones = divmod(n, 10)
    return f"{TENS[tens]}-{ORDINAL_ONES[ones]}" if ones else ORDINAL_TENS[n]


def suffix(n: int) -> str:
    """1 -> "1st", 22 -> "22nd", 13 -> "13th"."""
    end = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{end}"


def year_words(year: int, rng: random.Random) -> str:
    """1900..2099 as people say them: "nineteen ninety-four", "nineteen oh five", "nineteen hundred",
    "two thousand", "two thousand and seven", "two thousand seven", "twenty twelve", "twenty oh five"."""
    century, rest = divmod(year, 100)
    if century == 19:
        if rest == 0:
            return "nineteen hundred"
        if rest < 10:
            return rng.choice([f"nineteen oh {ONES[rest]}", f"nineteen hundred and {ONES[rest]}"])
        return f"nineteen {cardinal(rest)}"
    if rest == 0:
        return "two thousand"
    forms = [f"two thousand and {cardinal(rest)}", f"two thousand {cardinal(rest)}"]
    forms.append(f"twenty {cardinal(rest)}" if rest >= 10 else f"twenty oh {ONES[rest]}")
    return rng.choice(forms)


# -- phrasings -------------------------------------------------------------------------------------------

def month_name(month: int, rng: random.Random, *, abbreviate: bool = False) -> str:
    name = ABBREVIATIONS[month - 1] if abbreviate and rng.random() < 0.25 else MONTHS[month - 1]
    return name.lower() if rng.random() < 0.15 else name


def comma(rng: random.Random) -> str:
    return "," if rng.random() < 0.6 else ""


PHRASINGS = [  # (how it reads, builder(date, rng)); each row takes one at random
    ("March 23rd, 1994", lambda d, r: f"{month_name(d.month, r, abbreviate=True)} {suffix(d.day)}{comma(r)} {d.year}"),
    ("March 23, 1994", lambda d, r: f"{month_name(d.month, r, abbreviate=True)} {d.day}{comma(r)} {d.year}"),
    ("23 March 1994", lambda d, r: f"{d.day} {month_name(d.month, r, abbreviate=True)} {d.year}"),
    ("23rd March 1994", lambda d, r: f"{suffix(d.day)} {month_name(d.month, r)} {d.year}"),
    ("the 23rd of March, 1994", lambda d, r: f"the {suffix(d.day)} of {month_name(d.month, r)}{comma(r)} {d.year}"),
    ("the twenty-third of March, nineteen ninety-four",
     lambda d, r: f"the {ordinal(d.day)} of {month_name(d.month, r)}{comma(r)} {year_words(d.year, r)}"),
    ("March the twenty-third, two thousand and seven",
     lambda d, r: f"{month_name(d.month, r)} the {ordinal(d.day)}{comma(r)} {year_words(d.year, r)}"),
    ("March twenty-third, nineteen ninety-four",
     lambda d, r: f"{month_name(d.month, r)} {ordinal(d.day)}{comma(r)} {year_words(d.year, r)}"),
    ("March twenty-three, nineteen ninety-four",
     lambda d, r: f"{month_name(d.month, r)} {cardinal(d.day)}{comma(r)} {year_words(d.year, r)}"),
    ("twenty-third March nineteen ninety-four",
     lambda d, r: f"{ordinal(d.day)} {month_name(d.month, r)} {year_words(d.year, r)}"),
    ("the twenty-third of March 1994", lambda d, r: f"the {ordinal(d.day)} of {month_name(d.month, r)} {d.year}"),
    ("March 23rd, nineteen ninety-four",
     lambda d, r: f"{month_name(d.month, r)} {suffix(d.day)}{comma(r)} {year_words(d.year, r)}"),
]


def phrase(date: dt.date, rng: random.Random) -> str:
    return rng.choice(PHRASINGS)[1](date, rng)


def prompt(text: str) -> str:
    return f"date: {text}\niso:"


def answer(date: dt.date) -> str:
    return f" {date.isoformat()}"


def random_date(rng: random.Random) -> dt.date:
    return FIRST + dt.timedelta(days=rng.randrange((LAST - FIRST).days + 1))


def make_data(rng: random.Random, train_rows: int, heldout_rows: int) -> tuple[list, list]:
    """(train, held-out) lists of (text, date); no held-out date appears in training."""
    held_dates: list[dt.date] = []
    seen: set[dt.date] = set()
    while len(held_dates) < heldout_rows:
        date = random_date(rng)
        if date not in seen:
            seen.add(date)
            held_dates.append(date)
    held = [(phrase(d, rng), d) for d in held_dates]
    train = []
    while len(train) < train_rows:
        date = random_date(rng)
        if date not in seen:
            train.append((phrase(date, rng), date))
    return train, held


# -- tokenizer and model ----------------------------------------------------------------------------------

def build_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    # every digit its own piece (with the space before it, if any), then GPT-2's byte-level split
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r" ?\p{N}"), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS, pad_token=EOS,
                                   unk_token=EOS, model_max_length=POSITIONS, clean_up_tokenization_spaces=False)


def encode_rows(tok, rows: list) -> list[tuple[list[int], list[int]]]:
    """Each row as (prompt ids, answer ids + end token), tokenised as the prompt alone is at run time."""
    prompts = tok([prompt(t) for t, _ in rows], add_special_tokens=False)["input_ids"]
    answers = tok([answer(d) for _, d in rows], add_special_tokens=False)["input_ids"]
    return [(p, a + [tok.eos_token_id]) for p, a in zip(prompts, answers)]


def batch_tensors(encoded: list, pad: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded input ids, attention mask and labels (-100 but on the answer and end token)."""
    length = max(len(p) + len(a) for p, a in encoded)
    ids = torch.full((len(encoded), length), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, (p, a) in enumerate(encoded):
        n = len(p) + len(a)
        ids[i, :n] = torch.tensor(p + a)
        mask[i, :n] = 1
        labels[i, len(p):n] = torch.tensor(a)
    return ids, mask, labels


def exact_match(folder: Path, rows: list, batch_size: int = 100) -> tuple[float, float, list]:
    """Held-out (exact match, share ending with the end token, misses) with plain transformers generate."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    right = ended = 0
    misses = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        enc = tok([prompt(t) for t, _ in chunk], return_tensors="pt", padding=True)
        with torch.inference_mode():
            out = model.generate(**enc, do_sample=False, max_new_tokens=MAX_NEW_TOKENS)
        for (text, date), new in zip(chunk, out[:, enc["input_ids"].shape[1]:].tolist()):
            got = tok.decode(new, skip_special_tokens=True)
            ended += tok.eos_token_id in new
            if got.strip() == date.isoformat():
                right += 1
            else:
                misses.append((text, date.isoformat(), got))
    return right / len(rows), ended / len(rows), misses


def save_tokenizer(tok, folder: Path) -> None:
    """tokenizer.json and tokenizer_config.json, the class named as transformers 4 and 5 both read it
    (transformers 5 writes its own name, TokenizersBackend, which transformers 4 does not know)."""
    tok.save_pretrained(str(folder))
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config.pop("backend", None)
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--train-rows", type=int, default=100_000)
    parser.add_argument("--heldout-rows", type=int, default=1_300, help="held-out dates (the CSV gets --csv-rows)")
    parser.add_argument("--csv-rows", type=int, default=300)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--csv", type=Path, default=CSV_PATH)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    train, held = make_data(rng, args.train_rows, args.heldout_rows)
    held_dates = {d for _, d in held}
    assert not any(d in held_dates for _, d in train)
    log(f"{len(train):,} training rows, {len(held):,} held-out rows ({len({d for _, d in train}):,} distinct "
        f"training dates)")

    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

    tok = build_tokenizer([prompt(t) + answer(d) for t, d in train], args.vocab)
    encoded = encode_rows(tok, train)
    longest = max(len(p) + len(a) for p, a in encode_rows(tok, train + held))
    assert longest + 1 <= POSITIONS - 1, longest
    log(f"vocabulary {len(tok)}, longest row {longest} tokens, answers {len(encoded[0][1])} tokens")

    config = GPT2Config(vocab_size=len(tok), n_positions=POSITIONS, n_embd=args.dim, n_layer=args.layers,
                        n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)
    model = GPT2LMHeadModel(config)
    log(f"GPT2LMHeadModel: {sum(p.numel() for p in model.parameters()):,} parameters")
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))

    order = list(range(len(encoded)))
    shuffle = random.Random(args.seed + 1)
    shuffle.shuffle(order)
    cursor, epoch = 0, 0
    model.train()
    started = time.time()
    running = None
    for step in range(args.steps):
        if cursor + args.batch_size > len(order):
            shuffle.shuffle(order)
            cursor, epoch = 0, epoch + 1
        ids, mask, labels = batch_tensors([encoded[i] for i in order[cursor:cursor + args.batch_size]],
                                          tok.eos_token_id)
        cursor += args.batch_size
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % 50 == 0 or step == args.steps - 1:
            log(f"step {step:4d}  loss {running:.4f}  lr {lr_at(step):.2e}  {time.time() - started:5.0f} s")
    seconds = round(time.time() - started)
    rows_seen = args.steps * args.batch_size
    log(f"trained {args.steps} steps ({rows_seen:,} rows, {rows_seen / len(encoded):.2f} epochs) in {seconds} s")

    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.iterdir():
        if old.is_file():
            old.unlink()
    model.eval()
    model.save_pretrained(str(args.out))
    GenerationConfig(max_new_tokens=MAX_NEW_TOKENS, do_sample=False, bos_token_id=tok.eos_token_id,
                     eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id).save_pretrained(str(args.out))
    save_tokenizer(tok, args.out)

    csv_rows, extra = held[:args.csv_rows], held[args.csv_rows:]
    csv_match, csv_ended, csv_misses = exact_match(args.out, csv_rows)
    log(f"held-out exact match (sample_data CSV, {len(csv_rows)} rows, transformers generate, greedy): "
        f"{csv_match:.4f}; ended with the end token: {csv_ended:.4f}")
    accuracy = {"csv_rows": len(csv_rows), "csv_exact_match": round(csv_match, 4)}
    misses = list(csv_misses)
    if extra:
        all_match, _, all_misses = exact_match(args.out, held)
        log(f"held-out exact match (all {len(held)} held-out rows): {all_match:.4f}")
        accuracy.update(heldout_rows=len(held), heldout_exact_match=round(all_match, 4))
        misses = all_misses
    for text, want, got in misses[:20]:
        log(f"  miss: {text!r}: want {want}, got {got!r}")

    head = {
        "base": None,
        "architecture": type(model).__name__,
        "task": "text-generation",
        "prompt": "date: {text}\niso:",
        "trained": {
            "script": "scripts/train_dates.py",
            "data": "synthetic English dates 1900-2099 in "
                    f"{len(PHRASINGS)} phrasings (seeded RNG), held-out dates never in training",
            "rows": len(train),
            "steps": args.steps,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "threads": args.threads,
            "seconds": seconds,
            "model": f"GPT-2, {args.layers} layers, {args.dim} wide, {args.heads} heads, {POSITIONS} positions, "
                     f"vocabulary {len(tok)}",
        },
        "accuracy": {**accuracy, "measured_with": "transformers generate, greedy, max_new_tokens 12"},
    }
    (args.out / "head.json").write_text(json.dumps(head, indent=2) + "\n")
    for path in args.out.iterdir():
        path.chmod(0o644)  # safetensors writes 0600; the folder ships with the package
    size = folder_bytes(args.out)
    if size > MAX_FOLDER_BYTES:
        raise SystemExit(f"{args.out} is {size:,} bytes, over the {MAX_FOLDER_BYTES:,} byte limit")
    log(f"wrote {args.out} ({size:,} bytes)")

    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with open(args.csv, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["id", "text", "iso"])
        for i, (text, date) in enumerate(csv_rows, start=1):
            writer.writerow([i, text, date.isoformat()])
    log(f"wrote {args.csv} ({len(csv_rows)} rows)")


if __name__ == "__main__":
    main()
