"""The command line: `batchinfer run JOB.toml`, `batchinfer validate JOB.toml`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from batchinfer import __version__
from batchinfer.errors import EXIT_INTERNAL, BatchinferError
from batchinfer.job import JobSpec, load_job, secret_values

_set_option = click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
                           help="Override a job file value, e.g. --set model.backend=torch (repeatable).")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("batchinfer: %(message)s"))
    logger = logging.getLogger("batchinfer")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    if verbose < 2:  # transformers is chatty about things users can't act on
        logging.getLogger("transformers").setLevel(logging.ERROR)
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except ImportError:  # pragma: no cover
            pass


def _fail(exc: BatchinferError, spec: JobSpec | None = None) -> None:
    secrets = secret_values(spec) if spec is not None else []

    def scrub(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "***")
        return text

    click.echo(f"batchinfer: {exc.kind}: {scrub(exc.message)}", err=True)
    if exc.hint:
        click.echo(f"  hint: {scrub(exc.hint)}", err=True)
    sys.exit(exc.exit_code)


def _load(job_file: str, overrides: tuple[str, ...]) -> JobSpec:
    try:
        return load_job(job_file, list(overrides))
    except BatchinferError as exc:
        _fail(exc)
        raise  # unreachable


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchinfer")
def main() -> None:
    """Batch offline inference: Parquet/CSV in, Hugging Face model, Parquet out."""


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@_set_option
@click.option("-v", "--verbose", count=True, help="More log output (-vv for library logs too).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings, errors and the summary line.")
@click.option("--progress/--no-progress", default=None, help="Force the progress bar on or off.")
def run(job_file: str, overrides: tuple[str, ...], verbose: int, quiet: bool, progress: bool | None) -> None:
    """Run JOB_FILE: read the input, predict, write the output folder."""
    _setup_logging(verbose, quiet)
    spec = _load(job_file, overrides)
    from batchinfer.engine.runner import run_job

    try:
        result = run_job(spec, progress=progress)
    except BatchinferError as exc:
        _fail(exc, spec)
    except KeyboardInterrupt:
        click.echo("batchinfer: interrupted; completed parts are kept", err=True)
        sys.exit(130)
    except Exception:
        logging.getLogger("batchinfer").exception("internal error (a bug: please report it with this trace)")
        sys.exit(EXIT_INTERNAL)
    click.echo(result.summary_line())
    sys.exit(result.exit_code)


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@_set_option
def validate(job_file: str, overrides: tuple[str, ...]) -> None:
    """Check JOB_FILE without running it: schema, input files and columns, output location."""
    _setup_logging(0, True)
    spec = _load(job_file, overrides)
    from batchinfer.engine.runner import check_job
    from batchinfer.export import default_cache_dir
    from batchinfer.model_ref import read_config, resolve_model
    from batchinfer.tasks import task_class

    try:
        source, _, _, _ = check_job(spec)
        cache = Path(spec.runtime.cache_dir) if spec.runtime.cache_dir else default_cache_dir()
        ref = resolve_model(spec.model.name, spec.model.revision, cache_dir=cache)
        task_class(spec.model.task).check_model(read_config(ref), spec.model.name)
    except BatchinferError as exc:
        _fail(exc, spec)
    click.echo(f"batchinfer: {job_file} is valid: {len(source.files)} input file(s), "
               f"task {spec.model.task} on {spec.model.backend}, output {spec.output.path}")


if __name__ == "__main__":  # pragma: no cover
    main()
