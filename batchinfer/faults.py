"""Named fault points for crash tests: `BATCHINFER_FAULT=point:N` SIGKILLs the process at the Nth hit of `point`.

`BATCHINFER_FAULT_ONCE=PATH` fires it in one process only, across processes: the first to reach it creates PATH
and dies; the others (a restarted Ray worker) go on.
`BATCHINFER_TEST_HOLD_UNTIL=PATH` waits before each unit's inference until PATH exists (for lock tests: a
run that holds the lock exactly as long as the test needs).
Unset (always, outside tests) each call costs a comparison or two.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("BATCHINFER_FAULT", "")
_POINT, _, _COUNT = _SPEC.partition(":")
_hits: dict[str, int] = {}


_ONCE = os.environ.get("BATCHINFER_FAULT_ONCE", "")
_HOLD = os.environ.get("BATCHINFER_TEST_HOLD_UNTIL", "")


def hit(point: str) -> None:
    if point == "infer" and _HOLD:  # tests of overlapping runs need a run that lasts a while
        import time

        deadline = time.monotonic() + 300
        while _HOLD and not os.path.exists(_HOLD) and time.monotonic() < deadline:
            time.sleep(0.05)
    if not _POINT or point != _POINT:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] == int(_COUNT or 1):
        if _ONCE:
            try:
                os.close(os.open(_ONCE, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
        os.kill(os.getpid(), signal.SIGKILL)
