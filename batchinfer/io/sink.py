"""The Parquet sink: exactly-once output, one part per input unit, committed through a manifest.

The folder's layout (part, manifest, dead-letter and staging names) is io/layout.py's. A unit counts as done only when its manifest entry exists; its part (and dead-letter part) are written
before, each under a temporary name and renamed, so a rerun redoes any unit that was cut short and
rewrites its part under the same name. `overwrite` writes into a staging folder and swaps it in only when
complete; a swap cut short is rolled forward by the next run.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from batchinfer import faults
from batchinfer.io import layout
from batchinfer.errors import JobFileError, OutputError
from batchinfer.io.layout import Target
from batchinfer.io.lock import ObjectStoreLock, OutputLock
from batchinfer.io.retry import retrying
from batchinfer.io.storage import open_fs, storage_errors
from batchinfer.job import OutputSpec

@dataclass
class OutputState:
    """What an output folder holds, read without changing anything."""

    exists: bool = False
    complete: bool = False
    parts: list[str] = field(default_factory=list)
    done: dict[str, dict] = field(default_factory=dict)
    plan: dict | None = None
    summary: dict | None = None

    @property
    def empty(self) -> bool:
        return not (self.parts or self.done or self.complete)


class ParquetSink:
    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        try:
            self.fs, root = open_fs(spec.path, spec.storage_options)
        except (ImportError, ValueError, TypeError) as exc:
            raise OutputError(f"output {spec.path}: cannot open this location: {exc}") from None
        self.root = root.rstrip("/")
        self.meta = layout.meta_path(self.root)
        self.output = Target.output(self.root)
        # Locally a file is written under a temporary name and renamed; on object stores a PUT is atomic by
        # itself (the object appears whole or not at all), so parts go straight to their final names.
        self.local = isinstance(self.fs, LocalFileSystem)
        self.target = self.output  # where this run writes: the root, or a staging folder for overwrite
        self._lock: OutputLock | None = None
        self._staged: list[str] = []
        self._probed = False
        self._parquet = {"compression": None if spec.compression == "none" else spec.compression,
                         "compression_level": spec.compression_level}
        self.rows_written = 0
        self.units_written = 0

    @classmethod
    def writer_into(cls, spec: OutputSpec, target: Target) -> ParquetSink:
        """A sink for a worker of a run whose driver holds the lock: writes units into `target`, never commits."""
        sink = cls(spec)
        sink.target = target
        return sink

    @property
    def part_spec(self) -> OutputSpec:
        """The spec a worker writes this run's parts with (into `target`)."""
        return self.spec

    @property
    def dead_letters(self) -> str:
        """Where dead-lettered rows go, as the user wrote the output path."""
        return layout.dead_letter_path(self.spec.path)

    def pinned_version(self, identity: str) -> int | None:
        """The input table version an interrupted run read, for a resume to read it again; else None."""
        if self.spec.mode != "resume":
            return None
        state = self.inspect()
        version = None if state.complete or state.plan is None else state.plan.get("table")
        return None if version is None else int(version)

    # -- paths and small helpers -------------------------------------------------------------------
    def _join(self, *parts: str) -> str:
        return posixpath.join(*parts)

    def _ls(self, path: str) -> list[str]:
        self.fs.invalidate_cache(path)  # object store listings are cached; we need what is there now
        try:
            found = retrying(lambda: self.fs.ls(path, detail=False), what=f"listing {self.spec.path}")
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(p.rstrip("/")) for p in found if p.rstrip("/") != path.rstrip("/"))

    def _read_json(self, path: str) -> dict | None:
        try:
            return json.loads(retrying(lambda: self.fs.cat_file(path), what=f"reading {self.spec.path}"))
        except FileNotFoundError:
            return None
        except ValueError:
            return None  # cut short mid-write: treated as absent

    def _put(self, path: str, data: bytes) -> None:
        """Write bytes atomically: a temporary name and a rename locally, one PUT on object stores."""
        if not self.local:
            retrying(lambda: self.fs.pipe_file(path, data), what=f"writing {self.fs.unstrip_protocol(path)}")
            return
        tmp = self._join(posixpath.dirname(path), layout.temp_name(posixpath.basename(path)))
        with self.fs.open(tmp, "wb") as fh:
            fh.write(data)
        self.fs.mv(tmp, path)

    def _guard(self, what: str):
        """Storage errors as OutputErrors naming the output and what was being done (io/storage.py)."""
        return storage_errors(f"output {self.spec.path}", OutputError, doing=what, fs=self.fs)

    def _exists(self, path: str) -> bool:
        self.fs.invalidate_cache(path)
        return retrying(lambda: self.fs.exists(path), what=f"checking {self.spec.path}")

    # -- state -------------------------------------------------------------------------------------
    def inspect(self) -> OutputState:
        """Read what the output folder holds; changes nothing."""
        with self._guard("reading"):
            if not self._exists(self.root):
                return OutputState()
            if not self.fs.isdir(self.root):
                raise OutputError(f"output {self.spec.path} is a file, not a folder", hint="set output.path to a folder")
            names = self._ls(self.root)
            done = {}
            for entry in self._ls(self.output.done):
                if layout.is_entry(entry):
                    body = self._read_json(self._join(self.output.done, entry))
                    if body is not None:
                        done[layout.unit_of_entry(entry)] = body
            summary = self._read_json(layout.marker_path(self.root)) if layout.MARKER in names else None
            return OutputState(
                exists=True, complete=summary is not None and _agrees(summary, done),
                parts=[n for n in names if layout.is_part(n)], done=done,
                plan=self._read_json(self.output.plan), summary=summary)

    def check(self, *, allow_complete: bool = False, plan=None) -> OutputState:
        """Raise if the output cannot be written here or output.mode forbids it. Safe before any inference:
        changes nothing (on an object store it writes and deletes one empty probe object).

        `allow_complete`: a complete output is no error yet (the caller may find it is this job's and skip).
        `plan` (a dict, or a function giving it): this job's, to tell a complete run of this very input from one
        of the input as it was before a file changed.
        """
        self._check_compression()
        self._check_parent()
        state = self.inspect()
        if self.spec.mode == "error" and not state.empty and not (allow_complete and state.complete):
            if state.complete:
                plan = plan() if callable(plan) else plan
                changed = self._changes(state, plan) if plan is not None else None
                if changed:
                    raise OutputError(
                        f"output {self.spec.path} holds a finished run of this path, but not of the input as it "
                        f"is now (changed since: {changed})",
                        hint="set output.mode = 'resume' to redo what changed, 'overwrite' to replace it, or "
                             "choose another path")
                raise OutputError(
                    f"output {self.spec.path} already holds a complete run",
                    hint="set output.mode = 'overwrite' to replace it (e.g. --set output.mode=overwrite), "
                         "or choose another path")
            raise OutputError(
                f"output {self.spec.path} already holds an interrupted or foreign run "
                f"({len(state.parts)} part(s), {len(state.done)} committed unit(s))",
                hint="set output.mode = 'resume' to finish it, 'overwrite' to replace it, or choose another path")
        if self.spec.mode == "resume" and state.parts and state.plan is None:
            raise OutputError(f"output {self.spec.path} holds Parquet parts that batchinfer did not write",
                              hint="resume only continues a batchinfer output; use 'overwrite' or another path")
        return state

    def _check_compression(self) -> None:
        """output.compression_level is in the codec's range, and the codec encodes (one row, in memory)."""
        codec, level = self.spec.compression, self.spec.compression_level
        if level is not None and (codec == "none" or not pa.Codec.supports_compression_level(codec)):
            raise JobFileError(f"output.compression_level = {level}: {codec} takes no level",
                               hint="remove output.compression_level, or use zstd, gzip, brotli or lz4")
        if level is not None:
            low, high = pa.Codec.minimum_compression_level(codec), pa.Codec.maximum_compression_level(codec)
            if not low <= level <= high:
                raise JobFileError(f"output.compression_level = {level} is out of range for {codec}: "
                                   f"{low} to {high}", hint=f"set output.compression_level from {low} to {high}")
        try:
            pq.write_table(pa.table({"x": [0]}), pa.BufferOutputStream(), **self._parquet)
        except (pa.ArrowException, OSError) as exc:
            raise JobFileError(f"output.compression = {codec!r} cannot be used here: {exc}",
                               hint="choose another output.compression (zstd is the default)") from None

    def _check_parent(self) -> None:
        """The output can be written. Locally: its nearest existing folder is writable. Elsewhere: a probe
        object can be written and deleted under it (this finds a missing bucket; batchinfer never makes one)."""
        if not self.local:
            with self._guard("checking"):
                self._probe()
            return
        path = Path(self.root)
        for parent in [path, *path.parents]:
            if parent.exists():
                if not parent.is_dir():
                    raise OutputError(f"output {self.spec.path} cannot be created: {parent} is a file")
                if not os.access(parent, os.W_OK | os.X_OK):
                    raise OutputError(f"output {self.spec.path} cannot be written: {parent} is not writable",
                                      hint="fix its permissions (or its mount), or choose another output.path")
                return

    def _makedirs(self, path: str) -> None:
        """Make a folder locally. Object stores have no folders, and their makedirs would create buckets."""
        if self.local:
            self.fs.makedirs(path, exist_ok=True)

    def resume_conflict(self, state: OutputState, plan: dict) -> str | None:
        """Why an existing output cannot be resumed by a job with `plan`, or None if it can.

        A changed file (same path, new contents) is no conflict: its units are redone (`changed_files`).
        """
        if state.plan is None:
            return None
        changed = [k for k in sorted((set(plan) | set(state.plan)) - {"files"}) if plan.get(k) != state.plan.get(k)]
        if [f[0] for f in plan.get("files", [])] != [f[0] for f in state.plan.get("files", [])]:
            changed.insert(0, "input files")
        return ", ".join(changed) or None

    def _changes(self, state: OutputState, plan: dict) -> str | None:
        """What differs between the job that wrote `state` and a job with `plan` (options, files), or None."""
        conflict = self.resume_conflict(state, plan)
        files = self.changed_files(state, plan)
        names = [str(plan["files"][i][0]) for i in files[:3]] + (["..."] if len(files) > 3 else [])
        return ", ".join(([conflict] if conflict else []) + ([f"input file(s) {', '.join(names)}"] if files else [])) \
            or None

    @staticmethod
    def changed_files(state: OutputState, plan: dict) -> list[int]:
        """Indices of input files whose contents changed since the output was started."""
        old = (state.plan or {}).get("files", [])
        return [i for i, (a, b) in enumerate(zip(old, plan.get("files", []))) if a != b]

    def _forget_files(self, indices: list[int], plan: dict) -> None:
        """Uncommit every unit of these files (`_SUCCESS` first, then manifest, then parts), then record the
        new plan. Killed anywhere in here, the folder is incomplete and a rerun redoes what is missing."""
        self._unmark_complete()  # already gone when called from `open`; kept here so the order holds alone
        for folder in (self.output.done, self.root, self.output.dead):
            for name in self._ls(folder):
                if layout.is_unit(name) and layout.file_of(name) in indices:
                    self.fs.rm(self._join(folder, name))
        self._put(self.output.plan, _dumps(plan))
        faults.hit("after-plan")

    def _unmark_complete(self) -> None:
        if self._exists(layout.marker_path(self.root)):
            self.fs.rm(layout.marker_path(self.root))

    # -- lifecycle ---------------------------------------------------------------------------------
    def open(self, plan: dict) -> dict[str, dict]:
        """Take the lock, finish or discard leftovers, and return the units already committed (resume)."""
        with self._guard("preparing"):
            self._makedirs(self.meta)
            if self.local:
                self._lock = OutputLock(Path(layout.lock_path(self.root)), label=self.spec.path)
            else:
                self._lock = ObjectStoreLock(self.fs, layout.lock_path(self.root), label=self.spec.path)
            self._lock.acquire()
            try:
                self._recover_staging()
                self.remove_temp_files()
                state = self.check(plan=plan)
                if self.spec.mode == "overwrite":
                    self.target = Target.staging(self.root, layout.staging_name())
                    self._makedirs(self.target.done)
                    self._put(self.target.plan, _dumps(plan))
                    return {}
                if self.spec.mode == "resume":
                    conflict = self.resume_conflict(state, plan)
                    if conflict:
                        raise OutputError(
                            f"output {self.spec.path} was written by a different job (changed: {conflict})",
                            hint="resume needs the same input files, model and options; "
                                 "use 'overwrite' to start over")
                    self._unmark_complete()  # this run writes: the folder is not complete until it commits
                    changed = self.changed_files(state, plan)
                    if changed:
                        self._forget_files(changed, plan)
                        state = self.inspect()
                self._makedirs(self.output.done)
                if state.plan is None:
                    self._put(self.output.plan, _dumps(plan))
                self._probe()
                return state.done
            except BaseException:
                self.close()
                raise

    def remove_temp_files(self) -> None:
        """Temporary files of a run that was killed mid-write (we hold the lock: nobody else writes)."""
        folders = {self.root, self.output.dead, self.output.done, self.target.folder, self.target.dead,
                   self.target.done}
        for folder in sorted(folders):
            for name in self._ls(folder):
                if layout.is_temp(name):
                    self.fs.rm(self._join(folder, name))

    def _probe(self) -> None:
        """Write and delete an empty file under the output: it is writable (once per sink)."""
        if self._probed:
            return
        probe = self._join(self.root, layout.probe_name())
        retrying(lambda: self.fs.pipe_file(probe, b""), what=f"writing {self.spec.path}")
        retrying(lambda: self.fs.rm(probe), what=f"deleting in {self.spec.path}")
        self._probed = True

    def write(self, unit: str, table: pa.Table, *, dead: pa.Table | None = None, stats: dict[str, Any]) -> None:
        """Write one unit's part (and dead-letter part), then commit it with its manifest entry."""
        with self._guard(f"writing {unit}"):
            faults.hit("before-part")
            self._write_parquet(self.target.part(unit), table)
            faults.hit("after-part")
            if dead is not None and dead.num_rows:
                self._makedirs(self.target.dead)
                self._write_parquet(self.target.dead_part(unit), dead)
                faults.hit("after-dead-letter")
            self._put(self.target.entry(unit), _dumps({"rows": table.num_rows, **stats}))
            faults.hit("after-manifest")
        self.rows_written += table.num_rows
        self.units_written += 1

    def _write_parquet(self, path: str, table: pa.Table) -> None:
        if not self.local:  # encode in memory, then one atomic PUT (retried as a whole)
            buffer = pa.BufferOutputStream()
            pq.write_table(table, buffer, **self._parquet)
            self._put(path, buffer.getvalue().to_pybytes())
            return
        tmp = self._join(posixpath.dirname(path), layout.temp_name(posixpath.basename(path)))
        try:
            with self.fs.open(tmp, "wb") as fh:
                pq.write_table(table, fh, **self._parquet)
            faults.hit("part-written-not-renamed")
            self.fs.mv(tmp, path)
        except BaseException:
            try:
                self.fs.rm(tmp)
            except (OSError, FileNotFoundError):
                pass
            raise

    def commit(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Mark the output complete (for overwrite: swap the staged run in first). Returns the totals."""
        with self._guard("committing"):
            faults.hit("before-commit")
            if self.target.staged:
                staged = self._staged_files(self.target)
                self._put(self.target.complete, _dumps({"files": staged, "summary": summary}))
                faults.hit("staged-complete")
                totals = self._roll_forward(self.target, staged, summary)
                self.target = self.output
            else:
                totals = self._finish(summary)
        return totals

    def totals(self) -> dict[str, int]:
        return totals_of(list(self.inspect().done.values()))

    def _finish(self, summary: dict[str, Any]) -> dict[str, int]:
        """Write _SUCCESS with the totals over every manifest entry; return those totals."""
        totals = self.totals()
        self._put(layout.marker_path(self.root), _dumps({**totals, **summary}))
        return totals

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- overwrite staging -------------------------------------------------------------------------
    def _staged_files(self, staging: Target) -> list[str]:
        """What COMPLETE lists: the staged names (layout.Target) of a staging folder's parts and entries."""
        return [*(n for n in self._ls(staging.folder) if layout.is_part(n)),
                *(layout.staged_dead(n) for n in self._ls(staging.dead) if layout.is_part(n)),
                *(layout.staged_entry(n) for n in self._ls(staging.done) if layout.is_entry(n))]

    def _recover_staging(self) -> None:
        for name in self._ls(self.meta):
            if not layout.is_staging(name):
                continue
            staging = Target.staging(self.root, name)
            complete = self._read_json(staging.complete)
            if complete is None:
                self.fs.rm(staging.folder, recursive=True)  # an overwrite that never finished: the old output stands
            else:
                self._roll_forward(staging, complete["files"], complete["summary"])

    def _roll_forward(self, staging: Target, files: list[str], summary: dict[str, Any]) -> dict[str, int]:
        """Replace the old output by a complete staged one. Idempotent: a crash here is finished next run."""
        keep = set(files)
        out = self.output
        self._unmark_complete()
        for name in self._ls(self.root):
            if layout.is_part(name) and name not in keep:
                self.fs.rm(self._join(self.root, name))
        for name in self._ls(out.dead):
            if layout.staged_dead(name) not in keep:
                self.fs.rm(self._join(out.dead, name))
        for name in self._ls(out.done):
            if layout.staged_entry(name) not in keep:
                self.fs.rm(self._join(out.done, name))
        self._makedirs(out.done)
        for rel in files:
            src = staging.path_of(rel)
            if not self._exists(src):
                continue  # moved before a crash
            dst = out.path_of(rel)
            self._makedirs(posixpath.dirname(dst))
            self.fs.mv(src, dst)
            faults.hit("swap")
        if self._exists(staging.plan):
            self.fs.mv(staging.plan, out.plan)
        totals = self._finish(summary)
        self.fs.rm(staging.folder, recursive=True)
        return totals


def totals_of(entries: list[dict]) -> dict[str, int]:
    """rows, failed, truncated and units over manifest entries (what commit returns)."""
    return {key: sum(int(e.get(key, 0)) for e in entries) for key in ("rows", "failed", "truncated")} | {
        "units": len(entries)}


def _agrees(summary: dict[str, Any], done: dict[str, dict]) -> bool:
    """A `_SUCCESS` counts only while the manifest still holds every unit and row it totals."""
    rows = sum(int(d.get("rows", 0)) for d in done.values())
    return summary.get("units") == len(done) and summary.get("rows") == rows


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, indent=2, sort_keys=True, default=str).encode()
