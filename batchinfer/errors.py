"""Every error a user can act on, with the exit code the CLI maps it to.

Exit codes are a contract with schedulers (Airflow, cron): they are documented in the README and never
reused for another meaning.
"""

from __future__ import annotations


class BatchinferError(Exception):
    """Base of all errors that carry a message meant for the user."""

    exit_code: int = 1
    kind: str = "error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")


class JobFileError(BatchinferError):
    """The job file (or a `--set` override) is missing, not TOML, or does not match the schema."""

    exit_code = 3
    kind = "job file error"


class InputError(BatchinferError):
    """The input cannot be read: no files, unreadable file, missing or wrongly typed column."""

    exit_code = 4
    kind = "input error"


class ModelError(BatchinferError):
    """The model cannot be found, loaded, exported, or does not fit the task."""

    exit_code = 5
    kind = "model error"


class OutputError(BatchinferError):
    """The output cannot be written: exists already, not writable, disk full."""

    exit_code = 6
    kind = "output error"


class LockedError(BatchinferError):
    """Another run is writing the same output right now."""

    exit_code = 7
    kind = "output locked"


class RowErrors(BatchinferError):
    """A row could not be predicted and `on_error = "fail"`."""

    exit_code = 9
    kind = "row error"


class ClusterError(BatchinferError):
    """The Ray cluster failed the job: a worker kept dying, or the cluster cannot be reached."""

    exit_code = 10
    kind = "cluster error"


class DeviceError(BatchinferError):
    """The device the job asks for (runtime.device) is not on this machine, or its backend cannot use it."""

    exit_code = 11
    kind = "device error"


EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: a traceback is printed, please report it
EXIT_USAGE = 2  # click's own code for a bad command line
EXIT_ROWS_FAILED = 8  # the output is complete, but rows were skipped or dead-lettered
EXIT_INTERRUPTED = 130  # Ctrl-C (SIGINT): committed units kept, lock released
EXIT_TERMINATED = 143  # SIGTERM (a scheduler stopping the task): the same

EXIT_CODES: dict[str, int] = {
    "ok": EXIT_OK,
    "internal": EXIT_INTERNAL,
    "usage": EXIT_USAGE,
    "job file": JobFileError.exit_code,
    "input": InputError.exit_code,
    "model": ModelError.exit_code,
    "output": OutputError.exit_code,
    "locked": LockedError.exit_code,
    "rows failed": EXIT_ROWS_FAILED,
    "row error": RowErrors.exit_code,
    "cluster": ClusterError.exit_code,
    "device": DeviceError.exit_code,
    "interrupted": EXIT_INTERRUPTED,
    "terminated": EXIT_TERMINATED,
}
