"""An in-memory sink: the units of a run kept as Arrow tables, handed back as one table in unit order.

What a polars DataFrame predicted without `output=` is written to: the same runner, checks and per-unit
code as a job, nothing on disk. It has the methods of ParquetSink that the runner calls; there is nothing to
lock, resume or recover, so a run always starts empty.
"""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa

from batchinfer.io import layout
from batchinfer.io.sink import OutputState, totals_of


class MemorySink:
    fs = None  # no filesystem: no input can read back what it holds
    root = ""
    dead_letters = None  # the polars API refuses dead letters without output=

    def __init__(self) -> None:
        self._units: dict[str, tuple[pa.Table, dict[str, Any]]] = {}
        self._guard = threading.Lock()  # written by the runner's writer thread and by the runner itself

    def check(self, *, allow_complete: bool = False, plan=None) -> OutputState:
        return OutputState()

    def inspect(self) -> OutputState:
        return OutputState()

    def pinned_version(self, identity: str) -> None:
        return None

    def resume_conflict(self, state: OutputState, plan: dict) -> str | None:
        return None

    def changed_files(self, state: OutputState, plan: dict) -> list[int]:
        return []

    def open(self, plan: dict) -> dict[str, dict]:
        """Nothing is committed yet: every unit is to be done."""
        self._units.clear()
        return {}

    def write(self, unit: str, table: pa.Table, *, dead: pa.Table | None = None, stats: dict[str, Any]) -> None:
        if dead is not None and dead.num_rows:
            raise ValueError("a memory sink keeps no dead letters")  # the polars API refuses them first
        with self._guard:
            self._units[unit] = (table, {"rows": table.num_rows, **stats})

    def commit(self, summary: dict[str, Any]) -> dict[str, int]:
        """The run's totals (as ParquetSink.commit returns them)."""
        return totals_of([stats for _, stats in self._units.values()])

    def close(self) -> None:
        pass

    def remove_temp_files(self) -> None:
        pass

    def table(self) -> pa.Table:
        """Every unit's table, concatenated in unit order (input order)."""
        names = sorted(self._units, key=layout.parse_unit)
        return pa.concat_tables([self._units[name][0] for name in names])
