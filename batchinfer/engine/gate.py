"""The agreement gate on the job's own rows: a model below fp32 (int8, bf16) runs only if it gives the answers
fp32 gives on the job's first rows.

What the gate predicts with the job's model is the job's output for those rows: it is handed to the executor
(`Predicted`) rather than computed twice. Its verdict is kept in the cache per model, settings and rows, so a
rerun over the same rows loads no fp32 reference.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchinfer.digest import digest
from batchinfer.engine.units import prepare_unit, unit_keys
from batchinfer.errors import ModelError
from batchinfer.io.layout import unit_name
from batchinfer.job import JobSpec
from batchinfer.model import default_cache_dir
from batchinfer.pipelines import Pipeline, back_to_fp32, build_pipeline

log = logging.getLogger("batchinfer")

SAMPLE_ROWS = 512  # at most; a task may ask for fewer (Task.gate_rows)
GATE_VERSION = 2  # in the verdicts' key: 2 counts NaN as a difference and follows the OpenVINO cache fix


@dataclass(frozen=True)
class Predicted:
    """The job's model's results for the first rows of one unit, made by the gate (Pipeline.predict_results)."""

    unit: str
    keys: np.ndarray  # each row's seed key, as infer_unit computes it
    values: list
    results: dict[str, np.ndarray]

    def known_for(self, unit: str, values: list, keys: np.ndarray) -> dict[str, np.ndarray] | None:
        """These results if `values` (with `keys`) of `unit` start with the gate's rows, else None."""
        count = len(self.keys)
        if (unit != self.unit or len(values) < count or not np.array_equal(keys[:count], self.keys)
                or not all(_same(a, b) for a, b in zip(values, self.values))):
            return None
        return self.results


def _same(a, b) -> bool:
    """Equal inputs: texts (and text tuples) by value; decoded images or audio by identity of content."""
    if isinstance(a, (str, tuple)) or isinstance(b, (str, tuple)):
        return a == b
    return a is b or getattr(a, "tobytes", lambda: None)() == getattr(b, "tobytes", lambda: object())()


def check_on_data(spec: JobSpec, source, pipe: Pipeline) -> Predicted | None:
    """Compare int8 or bf16 with fp32 on the job's own first rows; stop before writing if they differ.

    Classification: the share of equal labels; embeddings: the mean cosine; generation and speech recognition:
    the share of equal texts. Must reach model.min_agreement. Returns the job's model's results for those rows
    when it ran them (None when a kept verdict answered, or the input has no rows).
    """
    reduced = pipe.backend.reduced
    columns = spec.input.read_columns
    text = columns if pipe.task.modality == "text" else None  # read as process_units reads: CSV text as bytes
    first = next(iter(source.batches(columns, text, keep_bad_rows=spec.input.on_error != "fail")), None)
    if first is None:
        return None
    head = dataclasses.replace(first, batch=first.batch.slice(0, min(SAMPLE_ROWS, pipe.task.gate_rows)))
    prep = prepare_unit(spec, head, pipe, source)
    if not prep.values:
        return None
    sample, keys = prep.values, unit_keys(prep)
    cached = _verdict_file(spec, pipe, sample)
    verdict = _read_json(cached) if cached is not None else None
    predicted = None
    if verdict is not None:
        agreement, what = float(verdict["agreement"]), str(verdict["what"])
        log.info("model: %s vs fp32 on the first %d rows of the input: %s %.4f (measured before on these rows: %s)",
                 reduced, len(sample), what, agreement, cached)
    else:
        results = pipe.predict_results(sample, spec.batching, encoded=prep.encoded, keys=keys)
        reference = build_pipeline(spec.model.model_copy(update={"quantize": "none", "precision": "fp32"}),
                                   spec.runtime)
        want = reference.predict(sample, spec.batching, encoded=prep.encoded, keys=keys)
        got = pipe.task.to_arrow(results)
        agreement, what = pipe.task.compare(got, want)
        lost = non_finite(got) - non_finite(want)
        if lost > 0:  # NaN or inf where fp32 has numbers: never a match, whatever the labels say
            agreement, what = 0.0, f"{lost} NaN or infinite values where fp32 has numbers; agreement counted as"
        log.info("model: %s vs fp32 on the first %d rows of the input: %s %.4f", reduced, len(sample), what,
                 agreement)
        if cached is not None:
            _write_json(cached, {"agreement": agreement, "what": what, "rows": len(sample)})
        predicted = Predicted(unit_name(first.file_index, first.batch_index), keys, sample, results)
    if not agreement >= spec.model.min_agreement:  # NaN is below every threshold
        raise ModelError(f"{reduced} changes this model's answers on your data: {what} {agreement:.4f} over the "
                         f"first {len(sample)} rows, below model.min_agreement = {spec.model.min_agreement}",
                         hint=f"use {back_to_fp32(reduced)}, or lower model.min_agreement if that is acceptable")
    return predicted


def _verdict_file(spec: JobSpec, pipe: Pipeline, sample: list) -> Path | None:
    """Where the verdict of the reduced model against fp32 on these sample rows is kept: one file per model
    content, model settings (min_agreement aside), runtime version and sample; None for rows not hashable."""
    rows = hashlib.sha256()
    for value in sample:
        data = value.encode() if isinstance(value, str) else getattr(value, "tobytes", None)
        if isinstance(value, tuple):  # text pairs
            data = "\0".join(value).encode()
        if data is None:
            return None
        rows.update(data if isinstance(data, bytes) else data())
        rows.update(repr(getattr(value, "shape", getattr(value, "size", ""))).encode() + b"\0")  # arrays, images
    key = digest({"gate": GATE_VERSION, "content": pipe.ref.content_hash,
                  "model": spec.model.model_dump(exclude={"min_agreement"}),
                  "batching": spec.batching.model_dump(), "backend": pipe.backend.description,
                  "rows": rows.hexdigest()})
    cache = Path(spec.runtime.cache_dir) if spec.runtime.cache_dir else default_cache_dir()
    return cache / "agreement" / f"{key}.json"


def non_finite(columns: dict[str, pa.Array]) -> int:
    """How many NaN or infinite floats prediction columns hold (inside lists and structs too)."""
    return sum(_non_finite(array) for array in columns.values())


def _non_finite(array) -> int:
    if isinstance(array, pa.ChunkedArray):
        return sum(_non_finite(chunk) for chunk in array.chunks)
    kind = array.type
    if pa.types.is_floating(kind):
        return pc.sum(pc.invert(pc.is_finite(array))).as_py() or 0
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _non_finite(array.flatten())
    if pa.types.is_struct(kind):
        return sum(_non_finite(array.field(i)) for i in range(kind.num_fields))
    return 0


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: dict) -> None:
    """Written whole or not at all (a temporary name, then a rename); a cache that cannot be written is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("agreement verdict not cached: %s", exc)
