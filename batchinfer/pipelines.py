"""Pipeline: task + tokenizer + backend, built once per process and cached.

`Pipeline.predict` is the one code path every front end drives: a column of texts in, Arrow prediction
columns out, in input order.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batchinfer.backends import Backend, backend_class, load_backend, load_parts
from batchinfer.backends.base import is_out_of_memory
from batchinfer.engine.batcher import plan_batches
from batchinfer.errors import InputError, ModelError
from batchinfer.job import BatchingSpec, ModelSpec, RuntimeSpec
from batchinfer.media import Medium, medium
from batchinfer.model import ModelGraph, ModelRef, default_cache_dir, read_config, resolve_model
from batchinfer.model.tokenizer import load_full, load_tokenizer
from batchinfer.phases import phase
from batchinfer.tasks import Task, for_model, task_class
from batchinfer.tasks.base import Encoded, row_cosines

log = logging.getLogger("batchinfer")


@dataclass
class Pipeline:
    task: Task
    backend: Backend
    ref: ModelRef
    _token_cap: int | None = field(default=None, init=False, repr=False)  # padded tokens that fit, once one did not

    @property
    def max_length(self) -> int:
        return self.task.max_length

    def token_lengths(self, texts: list[str]) -> np.ndarray:
        """Tokens per text before truncation; more than `max_length` means the text will be truncated."""
        return self.task.token_lengths(texts)

    def encode(self, values: list[Any]) -> Encoded:
        """Tokenize once, up front (token counts, and the ids where the task allows): see `Task.encode`."""
        return self.task.encode(values)

    def predict(self, texts: pa.Array | pa.ChunkedArray | list[str | None],
                batching: BatchingSpec | None = None, *, encoded: Encoded | None = None,
                on_batch: Callable[[np.ndarray, dict[str, np.ndarray]], None] | None = None,
                keys: np.ndarray | None = None, known: dict[str, np.ndarray] | None = None) -> dict[str, pa.Array]:
        """Predict one column of texts; nulls are treated as empty strings. Returns canonical column names.

        `encoded` (from `encode`) saves tokenizing again when the caller already did. `on_batch(rows, inputs)`
        is called after each model batch with its row indices and model inputs (progress, padding counts).
        `keys`: each row's position in the whole input (sampling seeds); default: its index here.
        `known`: `predict_results` already made for the first rows of `texts` (same keys): only the rest run.
        """
        values = list(texts) if self.task.modality != "text" else _as_texts(texts)
        if not values:
            return self.task.empty_results()
        return self.task.to_arrow(self.predict_results(values, batching, encoded=encoded, on_batch=on_batch,
                                                       keys=keys, known=known))

    def predict_results(self, values: list[Any], batching: BatchingSpec | None = None, *,
                        encoded: Encoded | None = None, on_batch=None, keys: np.ndarray | None = None,
                        known: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """`predict` before Arrow: the task's postprocess results per column, in input order."""
        batching = batching or BatchingSpec()
        done = len(next(iter(known.values()))) if known else 0
        if done:
            rest = np.arange(done, len(values))
            values = values[done:]
            encoded = encoded.subset(rest) if encoded is not None else None
            keys = (np.asarray(keys) if keys is not None else np.arange(done + len(values)))[done:]
            if not values:
                return known
        parts: dict[str, list[np.ndarray]] = {}
        order = []
        for idx, inputs, outputs in self.forward_batches(values, batching, encoded=encoded, keys=keys):
            order.append(idx)
            if on_batch is not None:
                on_batch(idx, inputs)
            for name, arr in self.task.postprocess(outputs, inputs).items():
                parts.setdefault(name, []).append(arr)
        order = np.concatenate(order)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        results = {name: np.concatenate(chunks)[inverse] for name, chunks in parts.items()}
        return {name: np.concatenate([known[name], arr]) for name, arr in results.items()} if done else results

    def forward_batches(self, values: list[Any], batching: BatchingSpec, *, encoded: Encoded | None = None,
                        keys: np.ndarray | None = None):
        """Yield (row indices, model inputs, model outputs) per model batch, in the batcher's order."""
        encoded = encoded if encoded is not None else self.task.encode(values)
        keys = np.arange(len(values)) if keys is None else np.asarray(keys)
        lengths = self.task.batch_lengths(encoded)
        plan = plan_batches(lengths, batch_size=batching.batch_size, max_tokens=batching.max_tokens,
                            sort_by_length=batching.sort_by_length,
                            sizes=self.task.inputs_per_row(encoded))  # a row's inputs stay in one batch
        for idx in plan:
            yield from self._forward_fitting(idx, values, encoded, keys, lengths)

    def _forward_fitting(self, idx: np.ndarray, values: list[Any], encoded: Encoded, keys: np.ndarray,
                         lengths: np.ndarray):
        """One planned batch, in halves (recursively) when the runtime runs out of memory on it; batches after
        that are kept under the padded tokens of the half that fitted."""
        padded = len(idx) * int(lengths[idx].max()) if len(idx) else 0
        if self._token_cap is not None and padded > self._token_cap and len(idx) > 1:
            halves = np.array_split(idx, 2)
        else:
            rows = [values[i] for i in idx]
            inputs = self.task.pad(encoded, idx) if encoded.ids is not None else self.task.preprocess(rows)
            try:
                outputs = self.task.forward(self.backend, inputs, keys=keys[idx], values=rows)
            except Exception as exc:  # noqa: BLE001  (each runtime has its own error types)
                if not is_out_of_memory(exc):
                    raise
                if len(idx) == 1:
                    raise ModelError(f"out of memory on a single row of {int(lengths[idx[0]])} tokens: {exc}",
                                     hint="lower model.max_length, or run on a device with more memory") from None
                log.warning("out of memory on a batch of %d rows (%d padded tokens); running it in halves",
                            len(idx), padded)
                halves = np.array_split(idx, 2)
                self._token_cap = min(self._token_cap or padded, padded // 2)
            else:
                yield idx, inputs, outputs
                return
        for half in halves:
            yield from self._forward_fitting(half, values, encoded, keys, lengths)


def _as_texts(texts: Any) -> list[str]:
    if isinstance(texts, list):  # texts, or tuples of texts (text pairs)
        return ["" if t is None else t if isinstance(t, tuple) else str(t) for t in texts]
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if pa.types.is_null(texts.type):
        return [""] * len(texts)
    if pa.types.is_dictionary(texts.type):
        texts = texts.dictionary_decode()
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)
            or pa.types.is_string_view(texts.type)):
        raise InputError(f"text column has type {texts.type}; expected strings")
    return pc.fill_null(texts, "").to_pylist()


_CACHE: dict[tuple, Pipeline] = {}
_LOCK = threading.Lock()


def build_pipeline(model: ModelSpec, runtime: RuntimeSpec | None = None) -> Pipeline:
    """Build (or fetch from the in-process cache) the Pipeline for a model section and runtime.

    The loaded model (tokenizer and backend session) is cached apart from the task options, so pipelines
    that differ only in top_k, function_to_apply, normalize or max_length share one loaded model.
    """
    runtime = runtime or RuntimeSpec()
    key = (model.model_dump_json(), runtime.threads, runtime.device, runtime.cache_dir,
           os.environ.get("BATCHINFER_CACHE"))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _build(model, runtime)
        return _CACHE[key]


@dataclass
class _Loaded:
    ref: ModelRef
    config: dict
    tokenizer: Any  # or the image processor, for image tasks
    backend: Backend
    text_tokenizer: Any = None  # image tasks whose model also takes text


_LOADED: dict[tuple, _Loaded] = {}


def _load(model: ModelSpec, runtime: RuntimeSpec, cls: type[Task]) -> _Loaded:
    cache_dir = Path(runtime.cache_dir) if runtime.cache_dir else default_cache_dir()
    key = (model.name, model.revision, model.backend, model.precision, model.quantize, model.min_agreement,
           model.trust_remote_code,
           model.allow_unsafe_weights,
           cls.auto_class, cls.modality, cls.text_inputs, cls.writes_text, cls.extra_outputs,  # what loads
           cls.lean_tokenizer,
           cls.head.__qualname__,
           runtime.threads, runtime.device, str(cache_dir))
    if key in _LOADED:
        return _LOADED[key]
    with phase("resolve_s"):
        ref = resolve_model(model.name, model.revision, cache_dir=cache_dir)
        config = read_config(ref)
    cls = for_model(cls, config)
    cls.check_model(config, model.name)
    text_tokenizer = None
    with phase("tokenizer_s"):
        if cls.modality != "text":
            kind = medium(cls.modality)
            tokenizer = _load_processor(kind, ref, model.trust_remote_code)
            input_names, sample_shape = kind.model_inputs(tokenizer)
            if cls.text_inputs or cls.writes_text:
                text_tokenizer = load_full(ref, model.trust_remote_code)
            if cls.text_inputs:
                input_names += tuple(text_tokenizer.model_input_names)
        else:
            tokenizer = load_tokenizer(ref, cache_dir, lean=cls.lean_tokenizer,
                                       trust_remote_code=model.trust_remote_code)
            input_names, sample_shape = tuple(tokenizer.model_input_names), None
    head = cls.head(config)
    graph = ModelGraph(ref=ref, auto_class=head.auto_class, output_name=head.output,
                       input_names=input_names, modality=cls.modality, sample_shape=sample_shape,
                       sequence_output=head.sequence_output,
                       trust_remote_code=model.trust_remote_code, allow_unsafe_weights=model.allow_unsafe_weights,
                       with_past=cls.generates, extra_outputs=head.extra_outputs)
    load = dict(threads=runtime.threads, cache_dir=cache_dir, precision=model.precision, quantize=model.quantize,
                device=runtime.device)
    parts = cls.model_parts(config)
    with phase("session_s"):  # the export and the runtime's session (both cached after the first run)
        if parts and backend_class(model.backend).runs_graphs:  # e.g. encoder, cross and decoder step: a graph each
            backend = load_parts(model.backend, {part: dataclasses.replace(
                graph, part=part, with_past=part != "encoder",  # every output of the other graphs
                output_name="last_hidden_state" if part == "encoder" else graph.output_name) for part in parts},
                **load)
        else:
            backend = load_backend(model.backend, graph, **load)
    if backend.reduced and not cls.generates:  # generation: the job's own rows are compared (runner)
        with phase("gate_s"):
            _check_agreement(cls, config, tokenizer, graph, backend, runtime, cache_dir, PROBE_MIN_COSINE)
    log.info("model: %s (%s) on %s", model.name, model.task, backend.description)
    _LOADED[key] = _Loaded(ref, config, tokenizer, backend, text_tokenizer)
    return _LOADED[key]


PROBE_MIN_COSINE = 0.99  # a sanity check of the quantized artifact; the job's own rows are checked too (runner)
PROBE_TEXTS = [
    "I loved every minute of it.", "A dull, lifeless waste of time.", "The meeting moved to Thursday at 10am.",
    "Stock markets fell sharply after the announcement.", "a cat sits on the mat", "ok",
    "The battery lasts two days and the screen is bright, but the speakers are tinny.",
    "Marie Curie was born in Warsaw and worked in Paris.", "Is this the right way to the station?",
    "Prices rose 3% in October, the fastest pace this year.", "Never again. Cold food, rude staff.",
    "The quick brown fox jumps over the lazy dog near the riverbank at dawn.",
]


def _check_agreement(cls, config, processor, graph, backend, runtime, cache_dir, minimum: float) -> None:
    """int8 or bf16 outputs must agree with fp32 (mean cosine over probe inputs) or the run stops."""
    reduced = backend.reduced
    verdict = backend.artifact.parent / f"agreement-{reduced}.json" if backend.artifact else None
    agreement = _kept_probe_verdict(verdict)
    if agreement is None:
        if cls.modality != "text":
            raise ModelError(f"{reduced} is offered for text models only")
        task = cls(config, processor, cls.probe_options())
        inputs = task.preprocess(task.probe_values(PROBE_TEXTS))
        reference = load_backend("ort", graph, threads=runtime.threads or 1, cache_dir=cache_dir)
        a, b = (task.comparable(run.forward(inputs), inputs) for run in (reference, backend))
        cos = row_cosines(a, b)
        agreement = float(cos.mean())
        if verdict is not None:
            verdict.write_text(json.dumps({"mean_cosine": agreement, "min_cosine": float(cos.min()),
                                           "probe_texts": len(PROBE_TEXTS), "probe": PROBE_VERSION}, indent=2))
    log.info("model: %s agreement with fp32: mean cosine %.4f", reduced, agreement)
    if not agreement >= minimum:  # NaN (the reduced model gave NaN) is below every threshold
        raise ModelError(f"{reduced} changes this model's outputs too much: mean cosine to fp32 is {agreement:.4f} "
                         f"on probe sentences, below {minimum}", hint=f"use {back_to_fp32(reduced)}")


PROBE_VERSION = 2  # verdicts written before it may come from an OpenVINO compile of the wrong precision


def _kept_probe_verdict(verdict: Path | None) -> float | None:
    """The mean cosine an earlier probe of this artifact measured, or None to measure it (no file, an older
    probe's, unreadable, or not a number)."""
    try:
        kept = json.loads(verdict.read_text()) if verdict is not None and verdict.is_file() else {}
        agreement = float(kept["mean_cosine"]) if kept.get("probe") == PROBE_VERSION else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return agreement if agreement is not None and np.isfinite(agreement) else None


def back_to_fp32(reduced: str) -> str:
    """The job file settings that undo a reduced precision such as 'int8-weights+bf16'."""
    return " and ".join("precision = 'fp32'" if part == "bf16" else "quantize = 'none'"
                        for part in reduced.split("+"))


def _load_processor(kind: Medium, ref: ModelRef, trust_remote_code: bool = False):
    try:
        return kind.load_processor(str(ref.path), trust_remote_code)
    except Exception as exc:
        raise ModelError(f"model folder {ref.path}: {kind.name} processor cannot be loaded: {exc}",
                         hint="the folder needs a preprocessor_config.json next to config.json") from None


def _sentence_transformers_max_length(ref: ModelRef) -> int | None:
    """A sentence-transformers folder states the length it was trained for; use it unless the job says otherwise."""
    try:
        value = json.loads((ref.path / "sentence_bert_config.json").read_text()).get("max_seq_length")
    except (OSError, ValueError):
        return None
    return int(value) if isinstance(value, int) and value > 0 else None


def _build(model: ModelSpec, runtime: RuntimeSpec) -> Pipeline:
    cls = task_class(model.task)
    loaded = _load(model, runtime, cls)
    max_length = model.max_length or _sentence_transformers_max_length(loaded.ref)
    text = {"tokenizer": loaded.text_tokenizer} if loaded.text_tokenizer is not None else {}
    task = for_model(cls, loaded.config)(loaded.config, loaded.tokenizer, model.options, max_length=max_length, **text)
    return Pipeline(task=task, backend=loaded.backend, ref=loaded.ref)
