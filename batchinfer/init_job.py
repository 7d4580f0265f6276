"""`batchinfer init DATA_FILE`: a commented job file for one Parquet or CSV file, ready to validate and run."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from batchinfer.errors import InputError, JobFileError

SAMPLE = "sentiment-minilm"  # the sample model a new job starts with: an English sentiment classifier
SAMPLE_MODEL = f"sample:{SAMPLE}"
# column names that usually hold the text, best first (a name containing one counts too, e.g. review_text)
TEXT_NAMES = ("text", "review", "body", "content", "sentence", "comment", "message")
PROBE_ROWS = 1000  # rows read to compare string lengths when no name decides


@dataclass(frozen=True)
class Written:
    job_file: Path
    column: str
    why: str
    output: str
    renamed: dict[str, str]


def _is_string(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def pick_text_column(source, schema: pa.Schema) -> tuple[str, str]:
    """(column, why): the string column named most like a text column, else the longest strings on average."""
    strings = [f.name for f in schema if _is_string(f.type)]
    if not strings:
        columns = ", ".join(f"{f.name} ({f.type})" for f in schema) or "none"
        hint = ("a CSV column whose values look like numbers or dates is read as numbers: set "
                "input.csv.infer_types = false in a job file you write by hand, or give the file a text column"
                if source.formats[0] == "csv" else "the model reads text: give the file a string column")
        raise InputError(f"input {source.display(source.files[0])} has no text (string) column to predict on; "
                         f"its columns are: {columns}", hint=hint)
    lower = {name: name.lower() for name in strings}
    for word in TEXT_NAMES:
        for name in strings:
            if lower[name] == word:
                return name, f"its name is {word!r}"
    for word in TEXT_NAMES:
        for name in strings:
            if word in lower[name]:
                return name, f"its name contains {word!r}"
    if len(strings) == 1:
        return strings[0], "it is the only string column"
    first = next(iter(source.batches(strings, None)), None)
    lengths = {name: 0.0 for name in strings}
    if first is not None and first.batch.num_rows:
        head = first.batch.slice(0, PROBE_ROWS)
        for name in strings:
            values = [v for v in head.column(name).to_pylist() if v is not None]
            lengths[name] = sum(map(len, values)) / len(values) if values else 0.0
    best = max(strings, key=lambda n: lengths[n])  # ties: the first
    return best, f"its strings are the longest on average ({lengths[best]:.0f} characters) of the string columns"


def sample_task() -> str:
    """The task of the sample model: the first text task (in registry order) whose transformers head is the
    sample's architecture (no module outside tasks/ names a task)."""
    from batchinfer.model import samples
    from batchinfer.tasks import tasks

    architecture = json.loads((samples.HERE / SAMPLE / "head.json").read_text())["architecture"]
    for name, cls in tasks().items():
        if cls.modality == "text" and architecture.endswith(cls.auto_class.removeprefix("AutoModel")):
            return name
    raise RuntimeError(f"no task runs the sample model's {architecture}")


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def _relative(target: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(target.resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive (Windows)
        return target.resolve().as_posix()


def default_job_file(data_file: Path) -> Path:
    return Path(f"{data_file.stem.removesuffix('.csv').removesuffix('.tsv')}.toml")


def write_job(data_file: str | Path, job_file: str | Path | None = None) -> Written:
    """Write a job file for `data_file` (Parquet or CSV) and return what was chosen. Refuses to overwrite."""
    from batchinfer.io.source import Source
    from batchinfer.job import InputSpec
    from batchinfer.tasks import task_class

    data = Path(data_file)
    target = Path(job_file) if job_file else default_job_file(data)
    if target.exists():
        raise JobFileError(f"{target} already exists; batchinfer init does not overwrite a job file",
                           hint="give another name with -o NEW.toml, or remove the file first")
    source = Source(InputSpec(path=str(data.resolve())))
    if len(source.files) != 1:
        raise InputError(f"input {data}: batchinfer init takes one data file, found {len(source.files)}",
                         hint="give one .parquet or .csv file; edit input.path afterwards for a folder or glob")
    schema = source.schema_of(0)
    task = sample_task()
    column, why = pick_text_column(source, schema)
    stem = data.name.split(".")[0] or "data"
    output = data.resolve().parent / f"{stem}-predictions"
    base = target.resolve().parent
    clash = [c for c in task_class(task).columns if c in schema.names]
    renamed = {c: f"predicted_{c}" for c in clash}
    others = [f.name for f in schema if _is_string(f.type) and f.name != column]
    lines = [
        f"# A batchinfer job for {data.name}, written by `batchinfer init`.",
        f"#   batchinfer validate {target}             # checks it: files, columns, model, output; runs nothing",
        f"#   batchinfer run {target} --limit 20       # the first 20 rows into a scratch folder, for a look",
        f"#   batchinfer run {target}                  # all rows",
        "# Relative paths in this file are relative to this file. Every key: the README's \"Job files\".",
        "",
        "[input]",
        f"path = {_toml(_relative(data, base))}",
        "# the column fed to the model: " + why
        + (f"; the other string columns: {', '.join(others)}" if others else ""),
        f"column = {_toml(column)}",
        "",
        "[model]",
        "# a small English sentiment model shipped with batchinfer (labels NEGATIVE / POSITIVE), no download;",
        "# or a Hugging Face model folder (save_pretrained), or a hub id already in your Hugging Face cache",
        f"name = {_toml(SAMPLE_MODEL)}",
        f"task = {_toml(task)}   # `batchinfer tasks` lists every task and its options",
        'backend = "ort"                 # ONNX Runtime; `batchinfer backends` lists the others',
        "",
        "[output]",
        "# a folder of Parquet parts (input columns kept, then the predictions), with _SUCCESS once complete",
        f"path = {_toml(_relative(output, base))}",
        'mode = "error"                  # error: refuse a folder that holds a run | overwrite | resume',
        f"# keep_columns = [{_toml(column)}]   # the input columns copied to the output (default: all)",
    ]
    if renamed:
        lines += ["", "[output.columns]  # the input already has these names: the predictions are renamed"]
        lines += [f"{c} = {_toml(n)}" for c, n in renamed.items()]
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(target, "x", encoding="utf-8") as fh:  # "x": never over a file made meanwhile
            fh.write("\n".join(lines) + "\n")
    except FileExistsError:
        raise JobFileError(f"{target} already exists; batchinfer init does not overwrite a job file",
                           hint="give another name with -o NEW.toml, or remove the file first") from None
    return Written(target, column, why, str(output), renamed)
