"""The command line: run, validate, export, tasks, backends, schema, cache; one error handler for all."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from batchinfer import __version__, signals
from batchinfer.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED, BatchinferError
from batchinfer.phases import STARTED

if TYPE_CHECKING:
    from batchinfer.job import JobSpec

_set_option = click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
                           help="Override a job file value, e.g. --set model.backend=torch (repeatable).")


_RAN: list[bool] = []


def _imports_seconds() -> float | None:
    """Seconds from `import batchinfer` to this command's start (imports, the command line), for this process's
    first run only (a later one in the same process imported nothing)."""
    if _RAN:
        return None
    _RAN.append(True)
    return time.perf_counter() - STARTED


def _setup_logging(verbose: int, quiet: bool, fmt: str = "text") -> None:
    from batchinfer import logs

    logs.setup(verbose=verbose, quiet=quiet, fmt=fmt)


def _meta() -> dict:
    """What the error handler needs to know of the running command (shared by every click context)."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.setdefault("batchinfer", {"log_format": "text", "summary_json": None}) if ctx else {}


def _remember_log_format(ctx: click.Context, param: click.Parameter, value: str) -> str:
    _meta()["log_format"] = value
    return value


_log_format_option = click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
    callback=_remember_log_format, is_eager=True,
    help="json: one JSON object per log line (and failure) on stderr; run also writes its summary as JSON.")


def _scrub(text: str) -> str:
    from batchinfer import logs

    return logs.scrub(text, logs.SCRUB.secrets)


def _report_failure(exc: BatchinferError) -> int:
    """Print a user error (text or a JSON line), write the failure summary if asked; return its exit code."""
    from batchinfer.logs import json_line

    meta = _meta()
    if meta.get("summary_json"):
        _write_json(meta["summary_json"], {"status": "failed", "exit_code": exc.exit_code, "error": exc.kind,
                                           "message": _scrub(exc.message)})
    if meta.get("log_format") == "json":
        click.echo(json_line("error", event="failed", error=exc.kind, exit_code=exc.exit_code,
                             message=_scrub(exc.message), hint=_scrub(exc.hint or "")), err=True)
    else:
        click.echo(f"batchinfer: {exc.kind}: {_scrub(exc.message)}", err=True)
        if exc.hint:
            click.echo(f"  hint: {_scrub(exc.hint)}", err=True)
    return exc.exit_code


def _report_internal() -> int:
    """An unexpected exception is a bug: say so, with the trace, and exit 1."""
    import traceback

    from batchinfer.logs import json_line

    message, trace = "internal error (a bug: please report it with this trace)", _scrub(traceback.format_exc())
    meta = _meta()
    if meta.get("summary_json"):
        _write_json(meta["summary_json"], {"status": "failed", "exit_code": EXIT_INTERNAL, "error": "internal error",
                                           "message": _scrub(str(sys.exc_info()[1]))})
    if meta.get("log_format") == "json":
        click.echo(json_line("error", event="failed", error="internal error", exit_code=EXIT_INTERNAL,
                             message=message, traceback=trace), err=True)
    else:
        click.echo(f"batchinfer: {message}\n{trace}", err=True)
    return EXIT_INTERNAL


def _report_interrupt(exc: KeyboardInterrupt, command: str | None) -> int:
    terminated = isinstance(exc, signals.Terminated)
    tail = ("; committed units are kept and the lock is released (output.mode = 'resume' continues)"
            if command == "run" else "")
    click.echo(f"batchinfer: {'terminated (SIGTERM)' if terminated else 'interrupted'}{tail}", err=True)
    return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


class _Group(click.Group):
    """Every subcommand's errors mapped one way: a BatchinferError to its exit code and message, Ctrl-C to 130,
    SIGTERM to 143, anything else to 1 with "internal error" and the trace."""

    def invoke(self, ctx: click.Context):
        saved = {}
        if threading.current_thread() is threading.main_thread():  # signals can only be caught there
            # a scheduler stopping the task (SIGTERM) or Ctrl-C: `finally`s run (units kept, lock released)
            saved = {sig: signal.signal(sig, signals.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BatchinferError as exc:
            ctx.exit(_report_failure(exc))
        except KeyboardInterrupt as exc:
            code = _report_interrupt(exc, ctx.invoked_subcommand)
            if signals.SIGNALLED.is_set():  # cleanup is done: exit now, not through an interpreter shutdown that may wait
                signals.exit_now(code)
            ctx.exit(code)
        except Exception:
            ctx.exit(_report_internal())
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)


def _write_json(path: str, data: dict) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(target)


def _load(job_file: str, overrides: tuple[str, ...]) -> JobSpec:
    """The job, with its secrets registered to be scrubbed from every message."""
    from batchinfer import logs
    from batchinfer.job import load_job, secret_values

    spec = load_job(job_file, list(overrides))
    logs.SCRUB.secrets = secret_values(spec)
    return spec


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchinfer")
def main() -> None:
    """Batch offline inference: Parquet/CSV in, Hugging Face model, Parquet out."""


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@_set_option
@click.option("-v", "--verbose", count=True, help="More log output (-vv for library logs too).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings, errors and the summary line.")
@click.option("--progress/--no-progress", default=None, help="Force the progress bar on or off.")
@_log_format_option
@click.option("--summary-json", metavar="PATH", help="Write the run summary (or the failure) as JSON to PATH.")
@click.option("--if-complete", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="skip: if this job already completed its output, do nothing and exit 0.")
@click.option("--wait-for-lock", type=float, default=0, metavar="SECONDS",
              help="If another run holds the output's lock, wait up to SECONDS for it instead of exiting 7.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default=None,
              help="Where to run: this machine, or Ray Data (sets runtime.executor).")
@click.option("--ray-address", metavar="ADDRESS", default=None,
              help="A running Ray cluster, e.g. ray://head:10001 (sets runtime.ray_address; implies --executor ray).")
@click.option("--device", metavar="DEVICE", default=None,
              help="cpu, cuda, cuda:N, gpu (openvino), gpu:N or auto (sets runtime.device).")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N",
              help="A quick look: predict only the first N rows, into a fresh scratch folder (the job's output "
                   "is not touched); the summary line says where.")
def run(job_file: str, overrides: tuple[str, ...], verbose: int, quiet: bool, progress: bool | None,
        log_format: str, summary_json: str | None, if_complete: str, wait_for_lock: float,
        executor: str | None, ray_address: str | None, device: str | None = None, limit: int | None = None) -> None:
    """Run JOB_FILE: read the input, predict, write the output folder."""
    imports_s = _imports_seconds()
    _setup_logging(verbose, quiet, log_format)
    _meta()["summary_json"] = summary_json
    if limit is not None and (ray_address or executor == "ray"):
        raise click.UsageError("--limit runs on this machine: leave out --executor ray and --ray-address")
    if ray_address:
        overrides += (f"runtime.ray_address={ray_address}", f"runtime.executor={executor or 'ray'}")
    elif executor:
        overrides += (f"runtime.executor={executor}",)
    if device:
        overrides += (f"runtime.device={json.dumps(device)}",)
    parsing = time.perf_counter()
    spec = _load(job_file, overrides)
    job_file_s = time.perf_counter() - parsing
    source = None
    if limit is not None:
        spec, source = _limited(job_file, overrides, spec, limit, log_format)
    from batchinfer.engine.runner import run_job
    from batchinfer.errors import LockedError
    from batchinfer.logs import json_line

    deadline = time.monotonic() + wait_for_lock
    while True:
        try:
            result = run_job(spec, progress=False if log_format == "json" else progress, if_complete=if_complete,
                             source=source)
            break
        except LockedError:
            if time.monotonic() >= deadline:
                raise
            logging.getLogger("batchinfer").info("output is locked by another run; waiting")
            time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
    result.timings = {**({"imports_s": round(imports_s, 3)} if imports_s is not None else {}),
                      "job_file_s": round(job_file_s, 3), **result.timings}
    summary = result.to_dict()
    if verbose and log_format == "text" and not result.already_complete:  # stderr: stdout ends with the summary
        click.echo(result.timings_line(), err=True)
    if summary_json:
        _write_json(summary_json, summary)
    click.echo(json_line("info", event="summary", **summary) if log_format == "json" else result.summary_line())
    sys.exit(result.exit_code)


@main.command("init")
@click.argument("data_file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "job_file", type=click.Path(dir_okay=False), default=None, metavar="JOB.toml",
              help="Where to write the job file (default: DATA_NAME.toml here). An existing file is not replaced.")
@_log_format_option
def init(data_file: str, job_file: str | None, log_format: str) -> None:
    """Write a commented job file for DATA_FILE (Parquet or CSV): its text column, the sample sentiment
    model, an output folder next to the data. Then: batchinfer validate JOB.toml; batchinfer run JOB.toml."""
    from batchinfer.init_job import write_job

    written = write_job(data_file, job_file)
    click.echo(f"batchinfer: wrote {written.job_file}: column {written.column!r} ({written.why}), "
               f"output {written.output}")
    click.echo(f"  next: batchinfer validate {written.job_file} && batchinfer run {written.job_file} --limit 20")


def _limited(job_file: str, overrides: tuple[str, ...], spec: JobSpec, limit: int, log_format: str):
    """`run --limit N`: the job with its output moved to its local scratch folder (run locally), and a source
    that reads only the input's first N rows. The job's own output is never opened. The scratch folder is
    the same for each job file and --set values, so a new quick look replaces the last one (none piles up)."""
    from batchinfer.io.limited import LimitedSource
    from batchinfer.logs import json_line

    scratch = str(_scratch_folder(job_file, overrides))
    scratch_sets = (f"output.path={json.dumps(scratch)}", 'output.mode="overwrite"', "output.storage_options={}",
                    'runtime.executor="local"')
    limited = _load(job_file, (*overrides, *scratch_sets))
    # a plain Parquet folder, whatever the job writes to (a table, a partitioned folder): nothing of its is opened
    limited.output = limited.output.model_copy(update={"format": "parquet", "partition_by": [], "run_id": None,
                                                       "table": None, "catalog": {}})
    note = (f"--limit {limit}: the first {limit:,} rows go to the scratch folder {scratch}; "
            f"the job's output {spec.output.path} is not touched")
    click.echo(json_line("info", event="limit", message=note, output=scratch) if log_format == "json"
               else f"batchinfer: {note}", err=True)
    return limited, LimitedSource(limited.input, limit)


def _scratch_folder(job_file: str, overrides: tuple[str, ...]) -> Path:
    """<temp>/batchinfer-limit-<user>/<job>-<hash of the job file's path and --set values>."""
    import getpass
    import hashlib
    import tempfile

    key = json.dumps([str(Path(job_file).resolve()), list(overrides)])
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return (Path(tempfile.gettempdir()) / f"batchinfer-limit-{user}"
            / f"{Path(job_file).stem}-{hashlib.sha256(key.encode()).hexdigest()[:10]}")


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@_set_option
@_log_format_option
@click.pass_context
def validate(ctx: click.Context, job_file: str, overrides: tuple[str, ...], log_format: str) -> None:
    """Check JOB_FILE without running it: schema, input files and columns, model, output location. Every
    problem is listed; the exit code is the first one's. A valid job shows its files, rows and output columns."""
    _setup_logging(0, True, log_format)
    spec = _load(job_file, overrides)
    from batchinfer.validation import check_everything, validated_lines

    problems, found = check_everything(spec)
    for problem in problems:
        _report_failure(problem)
    if problems:
        ctx.exit(problems[0].exit_code)
    click.echo(f"batchinfer: {job_file} is valid: task {spec.model.task} on {spec.model.backend}")
    for line in validated_lines(spec, *found):
        click.echo(f"  {line}")


def _cache_dir(value: str | None) -> Path:
    from batchinfer.model import default_cache_dir

    return Path(value).expanduser() if value else default_cache_dir()


class _BackendChoice(click.Choice):
    """The backend registry's names and aliases, read when the option is used (the CLI starts without it)."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from batchinfer.backends import aliases, backend_names

        return (*backend_names(), *aliases())

    @choices.setter
    def choices(self, value) -> None:  # click.Choice sets it once, empty
        pass


_cache_option = click.option("--cache-dir", metavar="DIR", help="Default: $BATCHINFER_CACHE or ~/.cache/batchinfer.")


@main.command()
@click.argument("model")
@click.option("--task", metavar="TASK", help="A task name or alias (`batchinfer tasks` lists them); not for a job.")
@click.option("--backend", default=None, type=_BackendChoice(), help="Default: ort (a job: its own).")
@click.option("--quantize", metavar="METHOD", help="none, dynamic-int8 (ort) or int8-weights (openvino).")
@click.option("--precision", metavar="PRECISION", help="fp32, or bf16 (openvino).")
@click.option("--max-length", type=click.IntRange(min=1), help="Truncate inputs to this many tokens.")
@_set_option
@_cache_option
@_log_format_option
def export(model: str, task: str | None, backend: str | None, quantize: str | None, precision: str | None,
           max_length: int | None, overrides: tuple[str, ...], cache_dir: str | None, log_format: str) -> None:
    """Warm the cache ahead of a scheduled run: export MODEL for --task (and convert it for the backend), or
    give a job file (JOB.toml) to build exactly what that job will load."""
    _setup_logging(0, False, log_format)
    from batchinfer.pipelines import build_pipeline

    given = {"backend": backend, "quantize": quantize, "precision": precision, "max_length": max_length}
    given = {k: v for k, v in given.items() if v is not None}
    spec = _export_job(model, task, given, overrides, cache_dir)
    for needed in _models_of(spec.model):
        pipe = build_pipeline(needed, spec.runtime)
        where = pipe.backend.artifact or pipe.ref.path
        click.echo(f"batchinfer: {needed.name} ready for {needed.task} on {needed.backend}"
                   f"{f' ({pipe.backend.reduced})' if pipe.backend.reduced else ''}: {where}")


def _export_job(model: str, task: str | None, given: dict, overrides: tuple[str, ...], cache_dir: str | None):
    """The job to warm: the job file MODEL (options given override it), or a job of MODEL for `task`."""
    from pydantic import ValidationError

    from batchinfer.job import JobSpec, ModelSpec, RuntimeSpec
    from batchinfer.tasks import task_class

    sets = [f"model.{k}={json.dumps(v)}" for k, v in given.items()]
    sets += [f"runtime.cache_dir={json.dumps(cache_dir)}"] if cache_dir else []
    if model.endswith(".toml") and Path(model).is_file():
        if task:
            raise click.UsageError("--task is for a model name; a job file names its own task")
        return _load(model, (*sets, *overrides))
    if not task:
        raise click.UsageError("give --task for a model name (or a job file, JOB.toml)")
    if overrides:
        raise click.UsageError("--set is for a job file; give --backend, --quantize, --precision, --max-length")
    try:
        options = task_class(task).probe_options().model_dump()  # a task's options shape no artifact
        spec = ModelSpec(name=model, task=task, **{"backend": "ort", **given}, **options)
    except ValidationError as exc:
        raise click.UsageError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    return JobSpec.model_construct(model=spec, runtime=RuntimeSpec(cache_dir=str(_cache_dir(cache_dir))))


def _models_of(model):
    """What a run of `model` loads: the model itself and, below fp32, the fp32 reference its answers are
    checked against on the job's rows."""
    yield model
    if model.quantize != "none" or model.precision != "fp32":
        yield model.model_copy(update={"quantize": "none", "precision": "fp32"})


@main.command()
@_log_format_option
def tasks(log_format: str) -> None:
    """List the tasks: name and aliases, input roles, prediction columns and options."""
    from batchinfer.tasks import tasks as registry

    for cls in registry().values():
        aliases = f" (alias: {', '.join(cls.aliases)})" if cls.aliases else ""
        roles = ", ".join(r if r in cls.required_roles else f"[{r}]" for r in cls.roles)
        options = ", ".join(f"{name}={field.get_default(call_default_factory=True)!r}"
                            for name, field in cls.Options.public_fields().items())
        click.echo(f"{cls.name}{aliases}\n  {cls.modality} in: {roles}\n  columns: {', '.join(cls.columns)}"
                   f"\n  options: {options or '-'}")


@main.command()
@_log_format_option
def backends(log_format: str) -> None:
    """List the backends: name and aliases, installed or how to install, precisions, quantizations, inputs."""
    from batchinfer.backends import backend_class, backend_installed, backend_names

    for name in backend_names():
        cls = backend_class(name)
        aliases = f" (alias: {', '.join(cls.aliases)})" if cls.aliases else ""
        installed = "installed" if backend_installed(name) else f"not installed: {cls.install_hint}"
        click.echo(f"{name}{aliases}\n  {installed}\n  precision: {', '.join(cls.precisions)}"
                   f"\n  quantize: {', '.join(cls.quantizations)}\n  inputs: {', '.join(cls.modalities)}")


@main.command()
@_log_format_option
def schema(log_format: str) -> None:
    """Print the job file's JSON Schema (each task's options included), for editors to validate job files."""
    from batchinfer.job_schema import job_schema

    click.echo(json.dumps(job_schema(), indent=2))


@main.group()
def cache() -> None:
    """Inspect or clear the export cache."""


@cache.command("list")
@_cache_option
@_log_format_option
def cache_list(cache_dir: str | None, log_format: str) -> None:
    """List cached ONNX exports and OpenVINO IR (and their int8 versions), assembled sample models, temporaries."""
    from batchinfer.model.cache_admin import entries

    folder = _cache_dir(cache_dir)
    found = entries(folder)
    for entry in found:
        click.echo(entry.line())
    click.echo(f"batchinfer: {len(found)} entr{'y' if len(found) == 1 else 'ies'} in {folder}, "
               f"{sum(e.size for e in found) / 1e6:.1f} MB")


@cache.command("clear")
@_cache_option
@click.option("--yes", is_flag=True, help="Do not ask.")
@_log_format_option
def cache_clear(cache_dir: str | None, yes: bool, log_format: str) -> None:
    """Remove everything in the export cache (it is rebuilt on the next run), except what a running build writes."""
    from batchinfer.model.cache_admin import clear, entries

    folder = _cache_dir(cache_dir)
    found = entries(folder)
    chosen = [e for e in found if e.removable]
    for entry in chosen:
        click.echo(entry.line())
    kept = len(found) - len(chosen)
    note = f" ({kept} in use by a running build, kept)" if kept else ""
    if not chosen:
        click.echo(f"batchinfer: nothing to remove in {folder}{note}")
        return
    click.echo(f"batchinfer: {len(chosen)} entr{'y' if len(chosen) == 1 else 'ies'} in {folder}, "
               f"{sum(e.size for e in chosen) / 1e6:.1f} MB{note}")
    try:
        agreed = yes or click.confirm("Remove them?", default=False)
    except click.Abort:  # no answer (stdin closed) or Ctrl-C
        agreed = False
    if not agreed:
        click.echo("batchinfer: nothing removed")
        return
    click.echo(f"batchinfer: removed {clear(folder, chosen) / 1e6:.1f} MB from {folder}")


def console() -> None:
    """The `batchinfer` command (`python -m batchinfer.cli` too): `main`, then a quick exit (signals.leave)."""
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if not isinstance(code, (int, type(None))):  # click passes ints; anything else is a message
        click.echo(code, err=True)
        code = 1
    signals.leave(code)


if __name__ == "__main__":  # pragma: no cover
    console()
