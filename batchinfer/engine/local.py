"""The local executor: reading ahead, inference and writing behind on this machine (engine/units.py)."""

from __future__ import annotations

from batchinfer.engine.executors import Units
from batchinfer.engine.units import process_units
from batchinfer.job import JobSpec


class LocalExecutor:
    def check(self, spec: JobSpec, source) -> None:
        """Any source, any sink: nothing to check."""

    def run(self, units: Units, *, pipe, on_rows=None) -> dict[str, int]:
        return process_units(units.spec, units.source, units.keep, units.predictions, units.sink, pipe, units.done,
                             on_rows=on_rows)
