"""Parquet: read batch by batch; a read may start at any batch (only the row groups that hold its rows).
Written by io/sink.py as a folder of parts, one per unit; partitioned (output.partition_by) by the writer below."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from batchinfer import faults
from batchinfer.io import layout
from batchinfer.io.formats.base import FileFormat, SourceBatch, TableWriter, drop_rows, rebatch
from batchinfer.io.storage import open_fs


class ParquetFormat(FileFormat):
    name = "parquet"
    suffixes = (".parquet", ".pq", ".parq")
    starts_anywhere = True

    def schema(self, source, path: str) -> pa.Schema:
        with source.fs.open(path, "rb") as fh:
            return pq.ParquetFile(fh).schema_arrow

    def rows(self, source, path: str) -> int | None:
        with source.fs.open(path, "rb") as fh:
            return pq.ParquetFile(fh).metadata.num_rows

    def batches(self, source, i: int, path: str, columns: list[str], text_column: str | None, *,
                keep_bad_rows: bool, first: int = 0, stop: int | None = None) -> Iterator[SourceBatch]:
        size = source.spec.batch_rows
        with source.fs.open(path, "rb") as fh:
            pf = pq.ParquetFile(fh)
            if not first and stop is None:
                stream, skip = pf.iter_batches(batch_size=size, columns=columns), 0
            else:  # only the row groups that hold the wanted rows
                meta, start = pf.metadata, first * size
                end = meta.num_rows if stop is None else min(stop * size, meta.num_rows)
                groups, row, skip = [], 0, 0
                for g in range(meta.num_row_groups):
                    n = meta.row_group(g).num_rows
                    if row + n > start and row < end:
                        skip = skip if groups else start - row
                        groups.append(g)
                    row += n
                if not groups:
                    return
                stream = rebatch(drop_rows(pf.iter_batches(batch_size=size, columns=columns, row_groups=groups),
                                           skip), size)
            for j, batch in enumerate(stream, start=first):
                if stop is not None and j >= stop:
                    return
                faults.hit("read")
                yield SourceBatch(i, path, j, source.conform_batch(batch, text_column), j * size)


FORMAT = ParquetFormat()


class PartitionedParquetWriter(TableWriter):
    """A Parquet folder split into `col=value/` folders by output.partition_by (hive style), written as a table
    is: a run's units staged (io/table_sink.py), then its rows written into the partition folders in one
    go, each file named after the run (`part-RUN-N.parquet`: a retry writes the same names again, never
    beside them), then `.NAME.batchinfer/published/RUN.json` (the run is written) and `_SUCCESS`. Overwrite
    deletes the old files first. Runs are staged beside the folder too, in `.NAME.batchinfer/runs/`: readers
    that glob `NAME/**/*.parquet` (polars, DuckDB) would read staged parts and dead letters kept inside it."""

    name = "parquet"
    options = ("partition_by",)
    package = "pyarrow"

    def _fs(self, spec):
        fs, root = open_fs(spec.path, spec.storage_options)
        return fs, root.rstrip("/")

    def _data(self, fs, root: str) -> list[str]:
        """The folder's entries other than batchinfer's own (and other hidden ones)."""
        try:
            names = fs.ls(root, detail=False)
        except FileNotFoundError:
            return []
        return [n for n in names if not posixpath.basename(n.rstrip("/")).startswith(("_", "."))]

    def exists(self, spec) -> bool:
        fs, root = self._fs(spec)
        fs.invalidate_cache(root)
        return bool(self._data(fs, root))

    def runs_folder(self, root: str) -> str:
        return posixpath.join(layout.beside_path(root), layout.RUNS)

    def published(self, spec, run_id: str) -> int | None:
        fs, root = self._fs(spec)
        marker = layout.published_path(layout.beside_path(root), run_id)
        fs.invalidate_cache(posixpath.dirname(marker))
        return 1 if fs.exists(marker) else None

    def publish(self, spec, staged, run_id: str) -> int:
        import pyarrow.dataset as ds

        fs, root = self._fs(spec)
        marker = layout.marker_path(root)
        if fs.exists(marker):
            fs.rm(marker)
        if spec.mode == "overwrite":
            for name in self._data(fs, root):
                fs.rm(name, recursive=True)
        options = ds.ParquetFileFormat().make_write_options(
            compression=None if spec.compression == "none" else spec.compression,
            compression_level=spec.compression_level)
        ds.write_dataset(staged.reader(), root, format="parquet", filesystem=_arrow_fs(fs),
                         partitioning=spec.partition_by, partitioning_flavor="hive", file_options=options,
                         basename_template=layout.partition_file_template(run_id), use_threads=False,
                         existing_data_behavior="overwrite_or_ignore")
        faults.hit("partitions-written")
        published = layout.published_path(layout.beside_path(root), run_id)
        fs.makedirs(posixpath.dirname(published), exist_ok=True)
        fs.pipe_file(published, json.dumps({"run_id": run_id}).encode())
        fs.pipe_file(marker, json.dumps({"run_id": run_id, "partition_by": spec.partition_by}).encode())
        return 1


    def scan(self, spec):
        import polars as pl

        return pl.scan_parquet(f"{spec.path.rstrip('/')}/**/*.parquet", hive_partitioning=True,
                               storage_options=spec.storage_options or None)


def _arrow_fs(fs):
    """An fsspec filesystem as pyarrow's (local stays local)."""
    import pyarrow.fs as pafs

    if isinstance(fs, LocalFileSystem):
        return pafs.LocalFileSystem()
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))


PARTITIONED = PartitionedParquetWriter()
