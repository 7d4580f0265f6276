"""A one-line progress display on a terminal: rows done / total, percent, rows/s."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int | None, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.rows = 0
        self.started = time.perf_counter()
        self._last = 0.0

    def update(self, rows: int) -> None:
        self.rows += rows
        now = time.perf_counter()
        if self.enabled and now - self._last >= 0.2:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.rows / max(now - self.started, 1e-9)
        if self.total:
            text = f"{self.rows:,}/{self.total:,} rows  {100 * self.rows / self.total:5.1f}%  {rate:,.0f} rows/s"
        else:
            text = f"{self.rows:,} rows  {rate:,.0f} rows/s"
        self.stream.write(f"\r  {text}\033[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
