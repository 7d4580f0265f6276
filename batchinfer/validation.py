"""`batchinfer validate`: every independent check of a job, each problem collected (not only the first), and
the lines a valid job shows (its files, rows and output columns)."""

from __future__ import annotations

from batchinfer.errors import BatchinferError
from batchinfer.job import JobSpec


def check_everything(spec: JobSpec) -> tuple[list[BatchinferError], tuple]:
    """(problems, (source, keep, predictions, task)): the checks' errors, and what they found (None where a
    check failed)."""
    problems: list[BatchinferError] = []
    return problems, _check_everything(spec, problems)


def _attempt(problems: list[BatchinferError], check, *args):
    """check(*args), or None with its error added to `problems`."""
    try:
        return check(*args)
    except BatchinferError as exc:
        problems.append(exc)
        return None


def _check_everything(spec: JobSpec, problems: list[BatchinferError]) -> tuple:
    """Each independent check of `check_job` and the model's, collecting errors; (source, keep, predictions,
    task) where found (None where a check failed)."""
    from batchinfer.engine.executors import load_executor
    from batchinfer.engine.runner import kept_columns, model_ref, prediction_names
    from batchinfer.errors import JobFileError
    from batchinfer.io import Source, open_sink

    predictions = _attempt(problems, prediction_names, spec)
    source = _attempt(problems, Source, spec.input)
    schema = source and _attempt(problems, _check_source, spec, source)
    keep = schema and predictions and _attempt(problems, kept_columns, spec, schema, predictions)
    task = _attempt(problems, _task_without_backend, spec, model_ref)
    sink = _attempt(problems, open_sink, spec.output)
    if sink is not None:
        _attempt(problems, sink.check)
        overlap = source.reads_under(sink.fs, sink.root) if source is not None else None
        if overlap is not None:
            problems.append(JobFileError(f"output.path {spec.output.path} is where input.path {overlap!r} reads: "
                                         "every run would read its own output back as input",
                                         hint="write the output outside the input folder (or narrow the pattern)"))
    if schema is not None:
        _attempt(problems, load_executor(spec.runtime.executor).check, spec, source)
    return source, keep, predictions, task


def _check_source(spec: JobSpec, source):
    from batchinfer.engine.runner import check_template

    check_template(spec, source)
    return source.check(spec.input.read_columns, spec.output.keep_columns, modality=spec.model.task_class.modality)


def _task_without_backend(spec: JobSpec, model_ref):
    """The model resolved and checked against the task, and the task built on its config (no tokenizer, no
    backend): enough for the output types. None for the types where the task needs its processor."""
    from batchinfer.model import read_config
    from batchinfer.tasks import for_model

    config = read_config(model_ref(spec))
    cls = for_model(spec.model.task_class, config)
    cls.check_model(config, spec.model.name)
    try:
        return cls(config, None, spec.model.options, max_length=spec.model.max_length)
    except BatchinferError:
        raise
    except Exception:  # the task reads its tokenizer or processor: the types are left out
        return None


def validated_lines(spec: JobSpec, source, keep, predictions, task) -> list[str]:
    rows = source.total_rows()
    lines = [f"input: {len(source.files)} file(s)" + (f", {rows:,} rows" if rows is not None else "")]
    shown = source.files[:10]
    lines += [f"  {source.display(f)}" for f in shown]
    if len(source.files) > len(shown):
        lines.append(f"  ... and {len(source.files) - len(shown)} more")
    lines.append(f"output: {spec.output.path}")
    types = {f.name: str(f.type) for f in source.schema}
    lines += [f"  {name}: {types.get(name, '?')}" for name in keep]
    predicted = {f.name: str(f.type) for f in task.output_schema()} if task is not None else {}
    lines += [f"  {name}: {predicted.get(canonical, '(type known once the model loads)')}  (prediction)"
              for canonical, name in predictions.items()]
    return lines
