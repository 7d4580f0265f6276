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
    _flush()
    os._exit(code)


def leave(code: int | None) -> None:
    """End the `batchinfer` command with `code`. Once its work is done and no other thread runs, the exit
    handlers run (logging's, Ray's, multiprocessing's) and the process leaves without tearing down its ~900
    modules one by one, which takes 0.2-0.3 s: a fifth of a small scheduled job. Otherwise: a normal exit."""
    if any(not t.daemon and t is not threading.current_thread() for t in threading.enumerate()):
        sys.exit(code)
    import atexit

    atexit._run_exitfuncs()
    _flush()
    os._exit(code or 0)


def _flush() -> None:
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
