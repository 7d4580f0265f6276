"""The local executor: reading ahead, inference and writing behind on this machine (engine/units.py)."""

from __future__ import annotations

from batchinfer.engine.executors import Units
from batchinfer.engine.progress import StageTimes
from batchinfer.engine.units import process_units
from batchinfer.job import JobSpec


class LocalExecutor:
    def check(self, spec: JobSpec, source) -> None:
        """Any source, any sink: nothing to check."""

    def run(self, units: Units, *, pipe, on_rows=None) -> dict:
        """This run's row counts, and `timings`: busy seconds per stage and padding (StageTimes.to_dict)."""
        stages = StageTimes()
        counts = process_units(units.spec, units.source, units.keep, units.predictions, units.sink, pipe,
                               units.done, on_rows=on_rows, stages=stages,
                               predicted=units.predicted)
        return {**counts, "timings": stages.to_dict()}
