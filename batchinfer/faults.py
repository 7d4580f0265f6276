"""Named fault points for crash tests: `BATCHINFER_FAULT=point:N` SIGKILLs the process at the Nth hit of `point`.

Unset (always, outside tests) it costs one dictionary lookup per call.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("BATCHINFER_FAULT", "")
_POINT, _, _COUNT = _SPEC.partition(":")
_hits: dict[str, int] = {}


def hit(point: str) -> None:
    if not _POINT or point != _POINT:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] == int(_COUNT or 1):
        os.kill(os.getpid(), signal.SIGKILL)
