"""Table outputs (Delta Lake, Iceberg, Lance): a run's units are staged as Parquet parts, exactly once, as
in a Parquet folder (io/sink.py), then the whole run becomes one commit of the table, which carries the run's
id. Nothing a run stages is visible in the table before that commit.

Each run is staged in a folder of its own, `runs/RUN/`, laid out as a Parquet output folder (parts, manifest,
plan, dead letters, `_SUCCESS`), with a marker in `open/` while it is not finished (io/layout.py).

RUN is `output.run_id`, else the fingerprint of the run's plan (input files and versions, model, options). A
retry of a run finds its staging folder and goes on from the units it holds; if the table already holds a
commit with the run's id (a crash after the commit, before `_SUCCESS`), nothing is committed again. A retry
whose input table has moved on reads the version the first attempt read (`pinned_version`). Once committed,
the staged parts are deleted, then `_SUCCESS` (with the table's version) is written; the manifest and the dead
letters stay.
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from batchinfer import faults
from batchinfer.digest import digest
from batchinfer.errors import OutputError
from batchinfer.io import layout
from batchinfer.io.formats import TableWriter, writer_for
from batchinfer.io.sink import OutputState, ParquetSink
from batchinfer.job import OutputSpec

log = logging.getLogger("batchinfer")


class TableSink:
    """The runner's sink for output.format = delta, iceberg or lance, and for a partitioned Parquet folder
    (the methods of ParquetSink it calls)."""

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        self.writer: TableWriter = writer_for(spec)
        self._folder = ParquetSink(spec.model_copy(update={"mode": "resume"}))  # OUTPUT itself: fs, root, lock
        self.fs, self.root = self._folder.fs, self._folder.root
        self.runs = self.writer.runs_folder(self.root)
        self.open_runs = layout.open_runs_path(self.runs)
        self.staging: ParquetSink | None = None  # this run's staging folder, once the plan is known
        self.run_id: str | None = None
        self.identity: str | None = None  # the job's (runner.job_identity), given to pinned_version
        self.rows_written = self.units_written = 0

    @property
    def target(self):
        return self.staging.target

    @property
    def dead_letters(self) -> str | None:
        """This run's dead letters: in its staging folder, kept after the commit."""
        return None if self.staging is None else self.staging.dead_letters

    @property
    def part_spec(self) -> OutputSpec:
        """The spec a worker writes this run's parts with (into `target`)."""
        return self.staging.spec

    # -- before the run ----------------------------------------------------------------------------
    def pinned_version(self, identity: str) -> int | None:
        """The input version an unfinished attempt of this job read (a retry reads it again), else None.
        `identity`: what stays the same across attempts of one job whatever its input does."""
        self.identity = identity
        for name, plan in self._unfinished():
            if plan.get("job") == identity and plan.get("table") is not None:
                return int(plan["table"])
        return None

    def _unfinished(self) -> list[tuple[str, dict]]:
        """(name, plan) of each run staged here and not finished (a marker under open/; stale ones go)."""
        found = []
        for name in self._folder._ls(self.open_runs):
            folder = posixpath.join(self.runs, name)
            if self._folder._exists(layout.marker_path(folder)):  # finished, then killed before its marker went
                self.fs.rm(posixpath.join(self.open_runs, name))
                continue
            plan = self._folder._read_json(posixpath.join(folder, layout.META, layout.PLAN))
            if plan:
                found.append((name, plan))
        return found

    def _plan(self, plan: dict) -> dict:
        """The plan a staging folder keeps: the job's, with its identity and the run's id."""
        plan = {k: v for k, v in plan.items() if k not in ("job", "run_id")}
        run_id = self.spec.run_id or digest(plan)
        return {**plan, "job": self.identity, "run_id": run_id}

    def _stage(self, plan: dict) -> ParquetSink:
        run_id = plan["run_id"]
        if self.staging is None or run_id != self.run_id:
            self.run_id = run_id
            folder = posixpath.join(self.runs, layout.run_name(run_id))
            path = self.fs.unstrip_protocol(folder) if "://" in self.spec.path else folder
            self.staging = ParquetSink(self.spec.model_copy(update={"path": path, "mode": "resume"}))
        return self.staging

    def check(self, *, allow_complete: bool = False, plan=None) -> OutputState:
        """The library is there, the table's state fits output.mode, the staging folder can be written."""
        self._folder._check_compression()
        self._folder._check_parent()
        plan = plan() if callable(plan) else plan
        state = self._stage(self._plan(plan)).inspect() if plan is not None else OutputState()
        if self.spec.mode == "error" and not (allow_complete and state.complete) and self._exists():
            raise OutputError(f"output {self.writer.display(self.spec)} already exists",
                              hint="set output.mode = 'append' to add this run's rows, 'overwrite' to replace "
                                   "them, or choose another table")
        return state

    def _exists(self) -> bool:
        try:
            return self.writer.exists(self.spec)
        except ImportError as exc:
            raise OutputError(f"output.format = {self.spec.format!r} needs {self.writer.package}: {exc}",
                              hint=f"pip install {self.writer.package}") from None

    def inspect(self) -> OutputState:
        return self.staging.inspect() if self.staging is not None else OutputState()

    def resume_conflict(self, state: OutputState, plan: dict) -> str | None:
        """A run named by output.run_id that was committed is this run, whatever its input did since."""
        if self.spec.run_id and state.complete:
            return None
        plan = self._plan(plan)
        return self._stage(plan).resume_conflict(state, plan)

    def changed_files(self, state: OutputState, plan: dict) -> list[int]:
        if self.spec.run_id and state.complete:
            return []
        plan = self._plan(plan)
        return self._stage(plan).changed_files(state, plan)

    # -- the run -----------------------------------------------------------------------------------
    def open(self, plan: dict) -> dict[str, dict]:
        """Stage into this run's folder: the units an earlier attempt committed there are done."""
        plan = self._plan(plan)
        staging = self._stage(plan)
        done = staging.open(plan)
        try:
            self._folder._makedirs(self.open_runs)
            self._folder._put(posixpath.join(self.open_runs, layout.run_name(self.run_id)), b"")
            self._drop_abandoned(plan)
            state = staging.inspect()
            if state.complete:
                log.info("output %s: run %s was committed before (table version %s)",
                         self.writer.display(self.spec), self.run_id, (state.summary or {}).get("table_version"))
            return done
        except BaseException:
            staging.close()
            raise

    def _drop_abandoned(self, plan: dict) -> None:
        """Earlier attempts of this job that never committed and never will (their input changed): deleted.
        One the table holds (a crash after its commit) is marked committed instead."""
        for name, old in self._unfinished():
            if name == layout.run_name(self.run_id) or old.get("job") != plan["job"]:
                continue
            folder = posixpath.join(self.runs, name)
            other = ParquetSink(self.spec.model_copy(update={"path": self._display(folder), "mode": "resume"}))
            try:
                other.open(old)
            except Exception:  # another process holds it, or it cannot be read: leave it
                continue
            try:
                version = self.writer.published(self.spec, old["run_id"])
                if version is not None:
                    self._finish(other, old["run_id"], version, {})
                    continue
            finally:
                other.close()
            log.info("output %s: an unfinished earlier attempt (%s) of this job read other input; its staged "
                     "units are deleted", self.writer.display(self.spec), name)
            self.fs.rm(folder, recursive=True)
            self.fs.rm(posixpath.join(self.open_runs, name))

    def _display(self, path: str) -> str:
        return self.fs.unstrip_protocol(path) if "://" in self.spec.path else path

    def write(self, unit: str, table: pa.Table, *, dead: pa.Table | None = None, stats: dict) -> None:
        self.staging.write(unit, table, dead=dead, stats=stats)
        self.rows_written, self.units_written = self.staging.rows_written, self.staging.units_written

    def commit(self, summary: dict) -> dict[str, int]:
        """Commit the staged run to the table (unless the table holds it already), delete the staged parts,
        then write `_SUCCESS` in the staging folder with the table's version. Returns the totals."""
        staging, run_id = self.staging, self.run_id
        state = staging.inspect()
        if state.complete:
            return staging.totals()
        version = self.writer.published(self.spec, run_id)
        if version is None:
            faults.hit("before-table-commit")
            parts = [posixpath.join(staging.root, name) for name in sorted(state.parts, key=layout.parse_unit)]
            version = self.writer.publish(self.spec, _Staged(staging, parts), run_id)
            faults.hit("after-table-commit")
        else:
            log.info("output %s: run %s is already in the table (version %s); not committed again",
                     self.writer.display(self.spec), run_id, version)
        return self._finish(staging, run_id, version, summary)

    def _finish(self, staging: ParquetSink, run_id: str, version: int, summary: dict) -> dict[str, int]:
        """A run the table holds: its staged parts deleted, `_SUCCESS`, its open marker removed."""
        for name in staging._ls(staging.root):  # the table holds them now; a kill here: the retry finds it so
            if layout.is_part(name):
                staging.fs.rm(posixpath.join(staging.root, name))
        faults.hit("staged-parts-deleted")
        totals = staging._finish({**summary, "table_version": version, "run_id": run_id})
        marker = posixpath.join(self.open_runs, layout.run_name(run_id))
        if self._folder._exists(marker):
            self.fs.rm(marker)
        return totals

    def commit_table(self, table: pa.Table) -> None:
        """Commit rows predicted elsewhere (a DataFrame's, in memory) as one run of this table: staged as one
        unit, then committed as any run is (once: output.run_id names the run)."""
        self.identity = self.spec.run_id
        plan = {"rows": digest({"run_id": self.spec.run_id})}
        self.check(plan=plan)
        self.open(plan)
        try:
            if not self.inspect().complete:
                self.write(layout.unit_name(0, 0), table, stats={"failed": 0, "truncated": 0})
            self.commit({})
        finally:
            self.close()

    def totals(self) -> dict[str, int]:
        return self.staging.totals()

    def remove_temp_files(self) -> None:
        if self.staging is not None:
            self.staging.remove_temp_files()

    def close(self) -> None:
        if self.staging is not None:
            self.staging.close()


class _Staged:
    """A staged run as a writer reads it: its part files in unit order, or their rows streamed."""

    def __init__(self, staging: ParquetSink, parts: list[str]) -> None:
        self.fs, self.parts = staging.fs, parts
        self.schema = self._schema()

    def _schema(self) -> pa.Schema:
        if not self.parts:
            raise OutputError("a run without units has nothing to commit")
        with self.fs.open(self.parts[0], "rb") as fh:
            return pq.ParquetFile(fh).schema_arrow

    def batches(self, schema: pa.Schema | None = None) -> Iterator[pa.RecordBatch]:
        for path in self.parts:
            with self.fs.open(path, "rb") as fh:
                for batch in pq.ParquetFile(fh).iter_batches(batch_size=65536):
                    yield batch if schema is None else pa.Table.from_batches([batch]).cast(schema).to_batches()[0]

    def reader(self, schema: pa.Schema | None = None) -> pa.RecordBatchReader:
        """The staged rows, streamed (cast to `schema` if given)."""
        return pa.RecordBatchReader.from_batches(schema or self.schema, self.batches(schema))

    def table(self, index: int, schema: pa.Schema | None = None) -> pa.Table:
        """Part `index` (one unit: a batch of rows) as a table (cast to `schema` if given)."""
        with self.fs.open(self.parts[index], "rb") as fh:
            table = pq.read_table(fh)
        return table if schema is None else table.cast(schema)
