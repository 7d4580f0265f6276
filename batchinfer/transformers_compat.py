"""`batchinfer.pipeline(...)`: the transformers pipeline call contract on top of our Pipeline.

A single input gives what transformers gives for a single input, a list gives a list; `batch_size`, `top_k`,
`truncation`, `function_to_apply` and `max_length` work as in transformers. The three phases
`preprocess`, `_forward` and `postprocess` are exposed; `__call__` runs them batched and length-sorted
through the same Pipeline, backends and export cache as the job runner.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import numpy as np

from batchinfer.backends import aliases, backend_installed
from batchinfer.errors import ModelError
from batchinfer.job import BatchingSpec, ModelSpec, RuntimeSpec
from batchinfer.pipelines import Pipeline, build_pipeline

log = logging.getLogger("batchinfer")

CALL_OPTIONS = {
    "text-classification": {"batch_size", "top_k", "function_to_apply", "truncation", "max_length", "padding"},
    "feature-extraction": {"batch_size", "truncation", "max_length", "padding", "tokenize_kwargs"},
    "image-classification": {"batch_size", "top_k", "function_to_apply", "timeout"},
    "token-classification": {"batch_size", "aggregation_strategy", "ignore_labels"},
    "zero-shot-classification": {"batch_size", "candidate_labels", "hypothesis_template", "multi_label"},
}
_UNSET = object()


def _load_image(value: Any):
    """A PIL image, a path, a URL or bytes, as transformers' load_image makes it: EXIF-rotated RGB."""
    import io

    import fsspec
    from PIL import Image, ImageOps

    if isinstance(value, Image.Image):
        image = value
    elif isinstance(value, (bytes, bytearray)):
        image = Image.open(io.BytesIO(value))
    elif isinstance(value, str):
        with fsspec.open(value, "rb") as fh:
            image = Image.open(io.BytesIO(fh.read()))
    else:
        raise TypeError(f"an image input must be a PIL image, a path, a URL or bytes, not {type(value).__name__}")
    return ImageOps.exif_transpose(image).convert("RGB")


def best_accelerator() -> str:
    """OpenVINO, then ONNX Runtime, then PyTorch: the first one installed."""
    return next((name for name in ("openvino", "ort") if backend_installed(name)), "torch")


class InferencePipeline:
    """What `batchinfer.pipeline(...)` returns: call it like a transformers pipeline."""

    def __init__(self, task: str, model: str, accelerator: str, *, runtime: RuntimeSpec,
                 defaults: dict[str, Any]) -> None:
        if task not in CALL_OPTIONS:
            raise ModelError(f"unknown task {task!r}; choose one of: {', '.join(CALL_OPTIONS)}")
        self.task, self.model, self.accelerator = task, model, accelerator
        self.runtime = runtime
        self._check_options(defaults)
        self.defaults = defaults
        # the loaded model the phases share (zero-shot labels only shape the inputs, not the model)
        self._base = self._pipeline({"candidate_labels": ["label"]} if task == "zero-shot-classification" else {})

    # -- plumbing ----------------------------------------------------------------------------------
    def _check_options(self, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - CALL_OPTIONS[self.task])
        if unknown:
            raise TypeError(f"{self.task} pipeline got unexpected keyword argument(s) {', '.join(unknown)}; "
                            f"accepted: {', '.join(sorted(CALL_OPTIONS[self.task]))}")

    def _pipeline(self, options: dict[str, Any]) -> Pipeline:
        spec: dict[str, Any] = {"name": self.model, "task": self.task, "backend": self.accelerator}
        if options.get("max_length"):
            spec["max_length"] = options["max_length"]
        if self.task.endswith("classification"):
            top_k = options.get("top_k", _UNSET if self.task == "text-classification" else 5)
            if top_k is not _UNSET:
                spec["top_k"] = 1_000_000 if top_k is None else top_k  # None: every label
            if options.get("function_to_apply") is not None:
                function = options["function_to_apply"]
                spec["function_to_apply"] = str(getattr(function, "value", function)).lower()
        if self.task == "token-classification":
            strategy = options.get("aggregation_strategy") or "none"  # transformers' default
            spec["aggregation_strategy"] = str(getattr(strategy, "value", strategy)).lower()
            if options.get("ignore_labels") is not None:
                spec["ignore_labels"] = list(options["ignore_labels"])
        if self.task == "zero-shot-classification":
            labels = options.get("candidate_labels") or []
            if isinstance(labels, str):  # transformers also takes "a, b, c"
                labels = [label.strip() for label in labels.split(",") if label.strip()]
            spec["candidate_labels"] = list(labels)
            if options.get("hypothesis_template"):
                spec["hypothesis_template"] = options["hypothesis_template"]
            spec["multi_label"] = bool(options.get("multi_label", False))
        return build_pipeline(ModelSpec(**spec), self.runtime)

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        self._check_options(kwargs)
        return {**self.defaults, **kwargs}

    # -- the three phases --------------------------------------------------------------------------
    def preprocess(self, inputs: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        """Tokenise (or process, for an image) one input into numpy model inputs."""
        options = self._options(kwargs)
        pipe = self._pipeline(options)
        if pipe.task.modality == "image":
            return pipe.task.preprocess([_load_image(inputs)])
        self._check_length(pipe, [inputs], options)
        return pipe.task.preprocess([inputs])

    def _forward(self, model_inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the backend: numpy arrays in, numpy arrays out."""
        return self._base.backend.forward(model_inputs)

    def postprocess(self, model_outputs: dict[str, np.ndarray], **kwargs: Any) -> Any:
        """Model outputs of one input to what transformers returns for it."""
        options = self._options(kwargs)
        if self.task == "feature-extraction":
            return [model_outputs["last_hidden_state"][0].tolist()]
        if self.task == "image-classification":
            options.setdefault("top_k", 5)
        return self._classify(model_outputs["logits"].astype(np.float32), self._pipeline(options), options)[0]

    # -- calling -----------------------------------------------------------------------------------
    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        options = self._options(kwargs)
        if self.task == "image-classification":
            options.setdefault("top_k", 5)  # transformers' default for images
            single = not isinstance(inputs, (list, tuple))
            texts = [_load_image(x) for x in ([inputs] if single else inputs)]
        else:
            single = isinstance(inputs, str)
            texts = [inputs] if single else list(inputs)
            if any(not isinstance(t, str) for t in texts):
                raise TypeError("inputs must be a string or a list of strings")
        pipe = self._pipeline(options)
        if self.task in ("token-classification", "zero-shot-classification"):
            return self._via_predict(pipe, texts, options, single)
        if pipe.task.modality == "text":
            self._check_length(pipe, texts, options)
        batch_size = int(options.get("batch_size") or 1)
        if self.task == "feature-extraction":
            # transformers returns each input's token vectors padded to the longest input of its batch, so
            # batches must be theirs: in input order. (For embeddings in bulk, use the job runner.)
            batching = BatchingSpec(batch_size=batch_size, sort_by_length=False)
        else:
            batching = BatchingSpec(batch_size=max(batch_size, 32))  # results do not depend on the batches
        results: list[Any] = [None] * len(texts)
        for idx, inputs_, outputs in pipe.forward_batches(texts, batching):
            if self.task == "feature-extraction":
                hidden = outputs["last_hidden_state"]
                for row, i in enumerate(idx):
                    results[i] = [hidden[row].tolist()]
            else:
                for row, value in zip(idx, self._classify(outputs["logits"].astype(np.float32), pipe, options)):
                    results[row] = value
        if single and self.task == "text-classification" and "top_k" not in options:
            return results  # transformers: one input without top_k gives a list holding one dict
        return results[0] if single else results

    def _via_predict(self, pipe: Pipeline, texts: list[str], options: dict[str, Any], single: bool) -> Any:
        """Tasks whose per-input answer is exactly what the job runner's columns hold."""
        columns = pipe.predict(texts, BatchingSpec(batch_size=max(int(options.get("batch_size") or 1), 32)))
        if self.task == "token-classification":
            results = columns["entities"].to_pylist()
        else:
            results = [{"sequence": text, "labels": labels, "scores": scores} for text, labels, scores in
                       zip(texts, columns["labels"].to_pylist(), columns["scores"].to_pylist())]
        return results[0] if single else results

    def _check_length(self, pipe: Pipeline, texts: list[str], options: dict[str, Any]) -> None:
        if options.get("truncation"):
            return
        lengths = pipe.token_lengths(texts)
        too_long = np.flatnonzero(lengths > pipe.max_length)
        if too_long.size:
            i = int(too_long[0])
            raise ValueError(f"input {i} has {int(lengths[i])} tokens, more than the model's maximum "
                             f"{pipe.max_length}; pass truncation=True to cut it")

    def _classify(self, logits: np.ndarray, pipe: Pipeline, options: dict[str, Any]) -> list[Any]:
        """The task's own postprocess, as transformers' dicts: one per input without top_k, else a list."""
        task = pipe.task
        out = task.postprocess({"logits": logits}, {})
        ids, scores = out["label"], out["score"]
        if ids.ndim == 1:  # top_k 1: one label per row
            ids, scores = ids[:, None], scores[:, None]
        rows = [[{"label": task.labels[j], "score": float(v)} for j, v in zip(i, s)] for i, s in zip(ids, scores)]
        return [row[0] for row in rows] if "top_k" not in options else rows

    def __repr__(self) -> str:
        return f"batchinfer.pipeline(task={self.task!r}, model={self.model!r}, accelerator={self.accelerator!r})"


_CACHE: dict[str, InferencePipeline] = {}
_LOCK = threading.Lock()


def pipeline(task: str, model: str, *, accelerator: str | None = None, threads: int = 0,
             cache_dir: str | None = None, **kwargs: Any) -> InferencePipeline:
    """A transformers-style pipeline on an accelerated backend.

    `accelerator`: "ort", "ov"/"openvino", "torch", or None for the best one installed (OpenVINO, then
    ONNX Runtime, then PyTorch). Keyword arguments become call defaults (`top_k`, `truncation`, ...).
    A second call with the same arguments returns the same object at once.
    """
    chosen = aliases().get(accelerator, accelerator) if accelerator else best_accelerator()
    key = json.dumps([task, str(model), chosen, threads, cache_dir, kwargs], sort_keys=True, default=str)
    if accelerator is None:
        log.info("pipeline: accelerator %r chosen (best installed)", chosen)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = InferencePipeline(task, str(model), chosen, runtime=RuntimeSpec(
                threads=threads, cache_dir=cache_dir), defaults=kwargs)
        return _CACHE[key]
