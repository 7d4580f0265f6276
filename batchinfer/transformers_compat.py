"""`batchinfer.pipeline(...)`: the transformers pipeline call contract on top of our Pipeline.

A single input gives what transformers gives for a single input, a list gives a list; keyword arguments work
as in transformers (each task declares the ones its transformers pipeline accepts, and how they map to its
options). The three phases `preprocess`, `forward` (`_forward` too) and `postprocess` are public, as a
transformers pipeline's; `__call__` runs them batched and length-sorted through the same Pipeline, backends and
export cache as the job runner. As in transformers, texts are not truncated unless `truncation=True`: the model
takes them up to its position limit, and a longer one raises `InputTooLongError`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import threading
from typing import Any

import numpy as np

from batchinfer.backends import aliases, backend_installed
from batchinfer.job import BatchingSpec, ModelSpec, RuntimeSpec
from batchinfer.pipelines import Pipeline, build_pipeline
from batchinfer.tasks import task_class

log = logging.getLogger("batchinfer")
CALL_BATCH = 32  # rows per model call when the results do not depend on the batches


class InputTooLongError(ValueError, RuntimeError):
    """A text longer than the model takes, without `truncation=True` (transformers fails there with a
    RuntimeError from the model; `except ValueError` works too)."""


def best_accelerator() -> str:
    """OpenVINO, then ONNX Runtime, then PyTorch: the first one installed."""
    return next((name for name in ("openvino", "ort") if backend_installed(name)), "torch")


class InferencePipeline:
    """What `batchinfer.pipeline(...)` returns: call it like a transformers pipeline."""

    def __init__(self, task: str, model: str, accelerator: str, *, runtime: RuntimeSpec,
                 defaults: dict[str, Any]) -> None:
        self.task_class = task_class(task)
        self.task, self.model, self.accelerator = task, model, accelerator
        self.runtime = runtime
        self._check_options(defaults)
        self.defaults = defaults
        # the loaded model the phases share (options such as zero-shot labels only shape inputs and outputs)
        self._base = self._build(self.task_class.probe_options().model_dump())
        self.task_class = type(self._base.task)  # the class that runs the task for this model (tasks.for_model)
        self._limited: dict[tuple[int, int], tuple[Pipeline, Pipeline]] = {}

    # -- plumbing ----------------------------------------------------------------------------------
    def _check_options(self, options: dict[str, Any]) -> None:
        accepted = self.task_class.call_options
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise TypeError(f"{self.task} pipeline got unexpected keyword argument(s) {', '.join(unknown)}; "
                            f"accepted: {', '.join(sorted(accepted))}")

    def _pipeline(self, call: dict[str, Any]) -> Pipeline:
        length = None if self.task_class.generates else call.get("max_length")  # generation: prompt + new tokens
        pipe = self._build(self.task_class.from_call(call), max_length=length)
        limit = pipe.task.transformers_max_length(call)
        if limit is None or limit == pipe.max_length:
            return pipe
        key = (id(pipe), limit)
        if key not in self._limited or self._limited[key][0] is not pipe:
            # the same loaded model; only the task's length limit (and its truncating tokenizer) differ
            task = copy.copy(pipe.task)
            task.__dict__.pop("_truncator_tok", None)
            task.max_length = limit
            self._limited[key] = (pipe, dataclasses.replace(pipe, task=task))
        return self._limited[key][1]

    def _build(self, options: dict[str, Any], *, max_length: int | None = None) -> Pipeline:
        spec: dict[str, Any] = {"name": self.model, "task": self.task, "backend": self.accelerator, **options}
        if max_length:
            spec["max_length"] = max_length
        return build_pipeline(ModelSpec(**spec), self.runtime)

    def _options(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        self._check_options(kwargs)
        return {**self.defaults, **kwargs}

    # -- the three phases --------------------------------------------------------------------------
    def preprocess(self, inputs: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        """Tokenise (or process, for an image) one input into numpy model inputs."""
        options = self._options(kwargs)
        pipe = self._pipeline(options)
        value = pipe.task.call_value(inputs)
        if pipe.task.modality == "text":
            self._check_length(pipe, [value], options)
        return pipe.task.preprocess([value])

    def forward(self, model_inputs: dict[str, np.ndarray], **kwargs: Any) -> dict[str, Any]:
        """Run the backend: numpy arrays in, numpy arrays out (the inputs kept beside the outputs, as
        transformers keeps what its postprocess needs, e.g. fill-mask's input_ids). Generating tasks take
        their generation keywords here, as transformers' forward does."""
        pipe = self._pipeline(self._options(kwargs)) if kwargs or self.task_class.generates else self._base
        rows = len(next(iter(model_inputs.values())))
        return {**model_inputs, **pipe.task.forward(pipe.backend, model_inputs, keys=np.arange(rows),
                                                    values=[None] * rows)}

    _forward = forward  # transformers' name for the same phase

    def postprocess(self, model_outputs: dict[str, np.ndarray], **kwargs: Any) -> Any:
        """Model outputs of one input to what transformers returns for it."""
        options = self._options(kwargs)
        return self._pipeline(options).task.transformers_rows(model_outputs, model_outputs, [None], options)[0]

    # -- calling -----------------------------------------------------------------------------------
    def __call__(self, inputs: Any = None, **kwargs: Any) -> Any:
        if inputs is None:  # inputs by role keyword: question=..., context=...
            inputs = self.task_class.call_inputs(kwargs)
        options = self._options(kwargs)
        pipe = self._pipeline(options)
        single = not isinstance(inputs, (list, tuple))
        given = [inputs] if single else list(inputs)
        values = [pipe.task.call_value(x) for x in given]
        if pipe.task.modality == "text":
            self._check_length(pipe, values, options)
        batch_size = int(options.get("batch_size") or 1)
        if pipe.task.keeps_call_batches:  # the results depend on the batches: transformers' own, in input order
            batching = BatchingSpec(batch_size=batch_size, sort_by_length=False)
        else:
            batching = BatchingSpec(batch_size=max(batch_size, CALL_BATCH))
        results: list[Any] = [None] * len(values)
        for idx, model_inputs, outputs in pipe.forward_batches(values, batching):
            rows = pipe.task.transformers_rows(outputs, model_inputs, [values[i] for i in idx], options)
            for i, row in zip(idx, rows):
                results[i] = row
        if single:
            return pipe.task.transformers_single(results, options, inputs)
        return pipe.task.transformers_list(results, options)

    def _check_length(self, pipe: Pipeline, values: list[Any], options: dict[str, Any]) -> None:
        if options.get("truncation") or (options.get("tokenizer_kwargs") or {}).get("truncation"):
            return
        lengths = pipe.token_lengths(values)
        too_long = np.flatnonzero(lengths > pipe.max_length)
        if too_long.size:
            i = int(too_long[0])
            raise InputTooLongError(f"input {i} has {int(lengths[i])} tokens, more than the model's maximum "
                                    f"{pipe.max_length}; pass truncation=True to cut it")

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
