"""Logging for people (a terminal) and for machines (JSON lines), with secrets scrubbed from both."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Literal

LogFormat = Literal["text", "json"]


def scrub(text: str, secrets: list[str]) -> str:
    """The text with every secret value replaced by ***."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


class ScrubSecrets(logging.Filter):
    """Replace every secret value (from the job's storage options) in a record's message by ***."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            record.msg, record.args = scrub(record.getMessage(), self.secrets), ()
        return True


def timestamp(seconds: float | None = None) -> str:
    """UTC time as every JSON log line writes it: 2026-01-31T12:00:00Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() if seconds is None else seconds)) + "Z"


def json_line(level: str, **fields) -> str:
    """One JSON log line written outside `logging` (a failure, the summary), shaped as JsonLines writes them."""
    return json.dumps({"time": timestamp(), "level": level, "logger": "batchinfer", **fields}, default=str)


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": timestamp(record.created),
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


SCRUB = ScrubSecrets()


def setup(*, verbose: int = 0, quiet: bool = False, fmt: LogFormat = "text") -> logging.Logger:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if fmt == "json" else logging.Formatter("batchinfer: %(message)s"))
    handler.addFilter(SCRUB)
    logger = logging.getLogger("batchinfer")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    if verbose < 2:  # transformers is chatty about things users can't act on
        _quiet_transformers()
    return logger


def _quiet_transformers() -> None:
    """Errors only from transformers, and no progress bars: set now if it is imported, else read by it when it
    is (a job that finds its export cached never imports it: 0.6 s, and torch's 1.6 s with it)."""
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    else:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
