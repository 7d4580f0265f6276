"""Named fault points for crash tests: `BATCHINFER_FAULT=point:N` SIGKILLs the process at the Nth hit of `point`.

`BATCHINFER_TEST_SLOW_UNIT_S=S` sleeps S seconds before each unit's inference (for lock tests).
Unset (always, outside tests) each call costs a comparison or two.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("BATCHINFER_FAULT", "")
_POINT, _, _COUNT = _SPEC.partition(":")
_hits: dict[str, int] = {}


_SLOW = float(os.environ.get("BATCHINFER_TEST_SLOW_UNIT_S", "0") or 0)


def hit(point: str) -> None:
    if _SLOW and point == "infer":  # tests of overlapping runs need a run that lasts a while
        import time

        time.sleep(_SLOW)
    if not _POINT or point != _POINT:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] == int(_COUNT or 1):
        os.kill(os.getpid(), signal.SIGKILL)
