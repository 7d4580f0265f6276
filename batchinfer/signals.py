"""SIGTERM and SIGINT for the CLI: raised in the main thread so that every `finally` runs (units written,
lock released), with a grace period after which the process exits anyway."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from batchinfer.errors import EXIT_INTERRUPTED, EXIT_TERMINATED


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that every `finally` runs: units written, lock released."""


SIGNALLED = threading.Event()
# after SIGTERM/SIGINT: the most time cleanup may take before the process exits anyway
CLEANUP_GRACE_SECONDS = float(os.environ.get("BATCHINFER_CLEANUP_GRACE", "20"))


def on_signal(signum, frame) -> None:
    """SIGTERM or SIGINT: raise in the main thread so that every `finally` runs, and exit within the grace
    period even if cleanup hangs (committed units are safe either way; a later run takes over the lock)."""
    signal.signal(signum, signal.SIG_DFL)  # a second signal stops at once
    code = EXIT_TERMINATED if signum == signal.SIGTERM else EXIT_INTERRUPTED
    SIGNALLED.set()
    threading.Thread(target=exit_if_stuck, args=(code,), name="batchinfer-exit", daemon=True).start()
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def exit_if_stuck(code: int) -> None:
    time.sleep(CLEANUP_GRACE_SECONDS)
    sys.stderr.write(f"batchinfer: cleanup did not finish within {CLEANUP_GRACE_SECONDS:.0f} s of the signal; "
                     "exiting (committed units are kept; the next run takes over the lock)\n")
    exit_now(code)


def exit_now(code: int) -> None:
    """Flush what was said, then leave without the interpreter's shutdown (threads, atexit): nothing is left."""
    for handler in [*logging.getLogger().handlers, *logging.getLogger("batchinfer").handlers]:
        try:
            handler.flush()
        except (OSError, ValueError):
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
