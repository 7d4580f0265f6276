"""The Parquet sink: one part per input batch, written under a temporary name and renamed when complete.

Parts are named `part-FFFFF-BBBBBB.parquet` (input file index, batch index), so reading them in name order
gives the input order. `_SUCCESS` (a small JSON summary) is written last: its presence means the output is
complete. Files starting with `_` or `.` are ignored by pyarrow, polars and Spark when reading the folder.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from batchinfer.errors import OutputError
from batchinfer.job import OutputSpec

MARKER = "_SUCCESS"


def part_name(file_index: int, batch_index: int) -> str:
    return f"part-{file_index:05d}-{batch_index:06d}.parquet"


class ParquetSink:
    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        try:
            self.fs, self.root = fsspec.core.url_to_fs(spec.path, **spec.storage_options)
        except (ImportError, ValueError) as exc:
            raise OutputError(f"output {spec.path}: cannot open this location: {exc}") from None
        self.parts: list[str] = []
        self.rows = 0

    def _existing(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        if not self.fs.isdir(self.root):
            raise OutputError(f"output {self.spec.path} is a file, not a folder",
                              hint="set output.path to a folder")
        return [p for p in self.fs.ls(self.root, detail=False)
                if posixpath.basename(p).startswith("part-") or posixpath.basename(p) == MARKER
                or posixpath.basename(p).startswith(".part-")]

    def check(self) -> list[str]:
        """Raise if output.mode forbids writing here; return the files of an earlier run. Changes nothing."""
        existing = self._existing()
        if existing and self.spec.mode == "error":
            raise OutputError(
                f"output {self.spec.path} already holds {len(existing)} file(s) from an earlier run",
                hint="set output.mode = 'overwrite' (e.g. --set output.mode=overwrite) or choose another path")
        return existing

    def start(self) -> None:
        """Check the output can be written (before any inference), honouring output.mode."""
        try:
            existing = self.check()
            for path in existing:
                self.fs.rm(path)
            self.fs.makedirs(self.root, exist_ok=True)
            probe = posixpath.join(self.root, f".probe-{uuid.uuid4().hex}")
            with self.fs.open(probe, "wb") as fh:
                fh.write(b"")
            self.fs.rm(probe)
        except OutputError:
            raise
        except OSError as exc:
            raise OutputError(f"output {self.spec.path} is not writable: {exc}") from None

    def write(self, file_index: int, batch_index: int, table: pa.Table) -> str:
        name = part_name(file_index, batch_index)
        final = posixpath.join(self.root, name)
        tmp = posixpath.join(self.root, f".{name}.tmp-{uuid.uuid4().hex[:12]}")
        compression = None if self.spec.compression == "none" else self.spec.compression
        try:
            with self.fs.open(tmp, "wb") as fh:
                pq.write_table(table, fh, compression=compression,
                               compression_level=self.spec.compression_level)
            self.fs.mv(tmp, final)
        except OSError as exc:
            try:
                self.fs.rm(tmp)
            except OSError:
                pass
            raise OutputError(f"writing {final} failed: {exc}",
                              hint="check free space and permissions; completed parts are kept") from None
        self.parts.append(name)
        self.rows += table.num_rows
        return final

    def commit(self, summary: dict[str, Any]) -> None:
        body = json.dumps({"parts": len(self.parts), "rows": self.rows, **summary}, indent=2).encode()
        try:
            with self.fs.open(posixpath.join(self.root, MARKER), "wb") as fh:
                fh.write(body)
        except OSError as exc:
            raise OutputError(f"writing the completion marker in {self.spec.path} failed: {exc}") from None
