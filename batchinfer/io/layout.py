"""The names in an output folder, formatted and parsed here only (the sink, the runner and the executors ask).

    part-FFFFF-BBBBBB.parquet       predictions of input file F, record batch B (name order = input order)
    _dead_letter/part-....parquet   rows that failed, with the error (on_error = "dead-letter")
    _SUCCESS                        JSON summary, written last: the output is complete
    _batchinfer/plan.json           what job wrote this output (a resume must match it)
    _batchinfer/done/part-....json  one manifest entry per committed unit, written after its part is in place
    _batchinfer/lock                held while a run writes here
    _batchinfer/staging-RUN/        an overwrite run's new output until it is complete: its parts,
                                    _dead_letter/, done/, plan.json, and COMPLETE (the files to swap in)

A unit is one record batch of one input file; its name is the stem of its part, dead-letter part and
manifest entry. Temporary files start with a dot (`.NAME.tmp-ID`, `.probe-ID`) and are never a unit.

A table output (io/table_sink.py) stages each run in a folder laid out as above:

    TABLE/_batchinfer/runs/RUN/             a Delta table's or Lance dataset's runs; Iceberg: under output.path
    TABLE/_batchinfer/open/RUN              a run not finished yet (one listing finds them, however many ran)
    .NAME.batchinfer/runs/RUN/              a partitioned Parquet folder NAME's, beside it (nothing but data
    .NAME.batchinfer/published/RUN.json     inside it), and the runs written into it
    NAME/col=value/part-RUN-N.parquet       a partitioned folder's files; Iceberg's: data/batchinfer-RUN-part-...

RUN is a run id as a name (`run_name`).
"""

from __future__ import annotations

import posixpath
import re
import uuid
from dataclasses import dataclass

MARKER = "_SUCCESS"
META = "_batchinfer"
DEAD = "_dead_letter"
DONE = "done"
PLAN = "plan.json"
LOCK = "lock"
COMPLETE = "COMPLETE"
PART = ".parquet"
ENTRY = ".json"
RUNS = "runs"
OPEN = "open"
PUBLISHED = "published"
_STAGING = "staging-"
_UNIT = re.compile(r"part-(\d{5,})-(\d{6,})")


def unit_name(file_index: int, batch_index: int) -> str:
    """`part-FFFFF-BBBBBB`: the name of batch `batch_index` of input file `file_index`."""
    if file_index < 0 or batch_index < 0:
        raise ValueError(f"a unit has no negative index: file {file_index}, batch {batch_index}")
    return f"part-{file_index:05d}-{batch_index:06d}"


def parse_unit(name: str) -> tuple[int, int]:
    """(file index, batch index) of a unit name, or of its part or manifest entry's file name."""
    match = _UNIT.fullmatch(_stem(name))
    if match is None:
        raise ValueError(f"{name!r} is not a unit of an output folder (part-FFFFF-BBBBBB)")
    return int(match[1]), int(match[2])


def is_unit(name: str) -> bool:
    """`name` is a unit, or its part or manifest entry's file name."""
    return _UNIT.fullmatch(_stem(name)) is not None


def file_of(name: str) -> int:
    """The input file index of a unit (or of its part or manifest entry)."""
    return parse_unit(name)[0]


def part_name(unit: str) -> str:
    return unit + PART


def entry_name(unit: str) -> str:
    return unit + ENTRY


def is_part(name: str) -> bool:
    """A Parquet part: ours, or another writer's (Spark's `part-00000-UUID.snappy.parquet`)."""
    return name.startswith("part-") and name.endswith(PART)


def is_entry(name: str) -> bool:
    return name.endswith(ENTRY) and is_unit(name)


def unit_of_entry(name: str) -> str:
    return name.removesuffix(ENTRY)


def _stem(name: str) -> str:
    for suffix in (PART, ENTRY):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name


def temp_name(name: str) -> str:
    """The temporary name `name` is written under before its rename (local filesystems)."""
    return f".{name}.tmp-{uuid.uuid4().hex[:12]}"


def probe_name() -> str:
    return f".probe-{uuid.uuid4().hex}"


def is_temp(name: str) -> bool:
    """A temporary file or probe a killed run may have left."""
    return name.startswith(".probe-") or name.startswith(".") and ".tmp-" in name


def staging_name(run: str | None = None) -> str:
    """`staging-RUN` (a new run id unless given)."""
    return _STAGING + (run or uuid.uuid4().hex[:12])


def is_staging(name: str) -> bool:
    return name.startswith(_STAGING)


def run_name(run_id: str) -> str:
    """A run id as a file or folder name: kept when it is plain, else its plain part and a digest."""
    import hashlib

    plain = "".join(c if c.isalnum() or c in "-_." else "-" for c in run_id)[:64]
    if plain == run_id:
        return plain
    return f"{plain.strip('-.') or 'run'}-{hashlib.sha256(run_id.encode()).hexdigest()[:8]}"


def runs_path(root: str) -> str:
    """Where the runs of a table at `root` are staged."""
    return posixpath.join(root, META, RUNS)


def beside_path(root: str) -> str:
    """`.NAME.batchinfer` beside the folder `root`: a partitioned folder's own files, outside it."""
    parent, name = posixpath.split(root.rstrip("/"))
    return posixpath.join(parent, f".{name}.batchinfer")


def open_runs_path(runs: str) -> str:
    """The folder of markers of the runs staged in `runs` that are not finished."""
    return posixpath.join(posixpath.dirname(runs.rstrip("/")), OPEN)


def published_path(meta: str, run_id: str) -> str:
    return posixpath.join(meta, PUBLISHED, f"{run_name(run_id)}{ENTRY}")


def partition_file_template(run_id: str) -> str:
    """pyarrow's basename_template for a run's files in a partitioned folder ({i}: pyarrow's counter)."""
    return f"part-{run_name(run_id)}-{{i}}{PART}"


def table_file_name(run_id: str, part: str) -> str:
    """A staged part's name in an Iceberg table's data folder."""
    return f"batchinfer-{run_name(run_id)}-{part}"


def meta_path(root: str) -> str:
    return posixpath.join(root, META)


def marker_path(root: str) -> str:
    return posixpath.join(root, MARKER)


def lock_path(root: str) -> str:
    return posixpath.join(root, META, LOCK)


def dead_letter_path(output: str) -> str:
    """The dead-letter folder of an output path, as the user wrote it (`s3://b/out` -> `s3://b/out/_dead_letter`)."""
    return f"{output.rstrip('/')}/{DEAD}"


def parts_glob(output: str) -> str:
    """What a reader of an output path scans: its parts (`out/*.parquet`; `_dead_letter/` is not matched)."""
    return f"{output.rstrip('/')}/*{PART}"


def staged_dead(name: str) -> str:
    """A dead-letter part's name in a staging folder's COMPLETE list."""
    return f"{DEAD}/{name}"


def staged_entry(name: str) -> str:
    """A manifest entry's name in a staging folder's COMPLETE list."""
    return f"{DONE}/{name}"


@dataclass(frozen=True)
class Target:
    """Where a run writes its units: the output folder itself, or an overwrite run's staging folder in it.

    A staging folder's COMPLETE lists its files by staged name: `part-....parquet`,
    `_dead_letter/part-....parquet` (`staged_dead`), `done/part-....json` (`staged_entry`).
    """

    root: str  # the output folder
    folder: str  # the output folder, or its staging folder

    @classmethod
    def output(cls, root: str) -> Target:
        return cls(root, root)

    @classmethod
    def staging(cls, root: str, name: str) -> Target:
        return cls(root, posixpath.join(root, META, name))

    @property
    def staged(self) -> bool:
        return self.folder != self.root

    @property
    def dead(self) -> str:
        return posixpath.join(self.folder, DEAD)

    @property
    def done(self) -> str:
        return posixpath.join(self.folder, DONE) if self.staged else posixpath.join(self.root, META, DONE)

    @property
    def plan(self) -> str:
        return posixpath.join(self.folder, PLAN) if self.staged else posixpath.join(self.root, META, PLAN)

    @property
    def complete(self) -> str:
        return posixpath.join(self.folder, COMPLETE)

    def part(self, unit: str) -> str:
        return posixpath.join(self.folder, part_name(unit))

    def dead_part(self, unit: str) -> str:
        return posixpath.join(self.dead, part_name(unit))

    def entry(self, unit: str) -> str:
        return posixpath.join(self.done, entry_name(unit))

    def path_of(self, staged: str) -> str:
        """Where a staged name (`done/x.json`, `_dead_letter/x.parquet`, `x.parquet`) lies in this target."""
        if staged.startswith(DONE + "/"):
            return posixpath.join(self.done, staged.removeprefix(DONE + "/"))
        return posixpath.join(self.folder, staged)
