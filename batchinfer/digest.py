"""One short, stable name for JSON-able settings: cache keys, verdict files, run ids, resume fingerprints."""

from __future__ import annotations

import hashlib
import json


def digest(data, length: int = 16) -> str:
    """The first `length` hex digits of the SHA-256 of `data` as sorted JSON (other values by their str)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:length]
