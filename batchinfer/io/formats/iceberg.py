"""Apache Iceberg tables (`pyiceberg`) in a catalog (input.catalog / output.catalog: pyiceberg's
`load_catalog` properties; its SQL catalog on SQLite runs anywhere, a REST catalog where there is one).

In: input.table at one snapshot (input.version: a snapshot id, or the current one), its data files as pieces,
input.row_filter applied as Iceberg plans and reads the files (delete files included).

Out: a run's staged Parquet parts are copied (embeddings as lists: Iceberg has no fixed-size list) into the table's data folder and added in one catalog commit
(`add_files`; overwrite: a delete and the add in one transaction) whose snapshot summary carries the run's
id: a retry that finds it does not commit again. output.path is where runs are staged.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from functools import lru_cache

import pyarrow as pa

from batchinfer import faults
from batchinfer.errors import InputError, OutputError
from batchinfer.io import layout
from batchinfer.io.formats.base import (FileFormat, SourceBatch, TableListing, TableWriter, rebatch,
                                        variable_lists)

PACKAGE = "pyiceberg[sql-sqlite]"
RUN_KEY = "batchinfer.run-id"


def _catalog(properties: dict, what: str, error=InputError):
    try:
        from pyiceberg.catalog import load_catalog
    except ImportError:
        raise error(f"{what} is an Iceberg table: reading and writing Iceberg needs pyiceberg",
                    hint=f"pip install '{PACKAGE}'") from None
    properties = dict(properties)
    try:
        return load_catalog(properties.pop("name", "default"), **properties)
    except Exception as exc:  # noqa: BLE001 - pyiceberg raises many kinds for a catalog it cannot open
        raise error(f"{what}: cannot open the Iceberg catalog: {exc}",
                    hint="check the catalog's properties (type, uri, warehouse)") from None


def _load(catalog, name: str, what: str, error=InputError):
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    try:
        return catalog.load_table(name)
    except (NoSuchTableError, NoSuchNamespaceError, ValueError):
        raise error(f"{what}: the catalog has no table {name!r}",
                    hint="name it as namespace.table; check the catalog") from None


def _scan(catalog: str, table: str, snapshot: int | None, row_filter: str | None):
    """The table's scan at `snapshot` (the current one, asked anew, if None) and its file tasks by path."""
    if snapshot is None:
        current = _load(_catalog(json.loads(catalog), f"input {table}"), table, f"input {table}").current_snapshot()
        if current is None:
            raise InputError(f"input {table}: the Iceberg table has no snapshot (no rows yet)")
        snapshot = current.snapshot_id
    return _snapshot_scan(catalog, table, snapshot, row_filter)


@lru_cache(maxsize=8)
def _snapshot_scan(catalog: str, table: str, snapshot: int, row_filter: str | None):
    from pyiceberg.expressions import AlwaysTrue

    tbl = _load(_catalog(json.loads(catalog), f"input {table}"), table, f"input {table}")
    if tbl.snapshot_by_id(snapshot) is None:
        raise InputError(f"input {table}: the Iceberg table has no snapshot {snapshot} (any more)",
                         hint="an expired snapshot cannot be read; read another input.version, or "
                              "use output.mode = 'overwrite' to start over on the current one")
    try:
        scan = tbl.scan(row_filter=row_filter or AlwaysTrue(), snapshot_id=snapshot)
        tasks = {task.file.file_path: task for task in scan.plan_files()}
    except Exception as exc:  # noqa: BLE001 - a row filter that does not parse or names no column
        raise InputError(f"input {table}: input.row_filter = {row_filter!r} cannot be applied: {exc}",
                         hint="write it as Iceberg reads it, e.g. \"day = '2026-12-01' and score > 0.5\"") from None
    return snapshot, scan, tasks


def _plain(schema: pa.Schema) -> pa.Schema:
    """The table's Arrow schema without Iceberg's field ids on every field."""
    return pa.schema([f.remove_metadata() for f in schema])


class IcebergFormat(FileFormat):
    name = "iceberg"
    suffixes = ()
    is_table = True
    named_in_catalog = True
    table_options = ("table", "catalog", "version", "row_filter")
    type_hint = "input.column must name a string column of the table"

    def _scan(self, source, snapshot):
        spec = source.spec
        return _scan(json.dumps(spec.catalog, sort_keys=True, default=str), spec.table, snapshot, spec.row_filter)

    def list_table(self, source, url: str | None) -> TableListing:
        version = source.spec.version if source.spec.version is not None else source.pin()
        snapshot, _, tasks = self._scan(source, version)
        pieces = sorted(tasks)
        return TableListing(snapshot, pieces, [tasks[p].file.file_size_in_bytes for p in pieces],
                            [None if tasks[p].delete_files or source.spec.row_filter else tasks[p].file.record_count
                             for p in pieces])

    def schema(self, source, path: str) -> pa.Schema:
        _, scan, _ = self._scan(source, source.table_version)
        return _plain(scan.projection().as_arrow())

    def batches(self, source, i: int, path: str, columns: list[str], text_column: str | None, *,
                keep_bad_rows: bool, first: int = 0, stop: int | None = None) -> Iterator[SourceBatch]:
        from pyiceberg.io.pyarrow import ArrowScan

        size = source.spec.batch_rows
        _, scan, tasks = self._scan(source, source.table_version)
        reader = ArrowScan(scan.table_metadata, scan.io, scan.projection(), scan.row_filter, scan.case_sensitive,
                           scan.limit)
        stream = (batch.select(columns) for batch in reader.to_record_batches([tasks[path]]))
        for j, batch in enumerate(rebatch(stream, size)):
            faults.hit("read")
            yield SourceBatch(i, path, j, source.conform_batch(_plain_batch(batch), text_column), j * size)


def _plain_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(batch.columns, schema=_plain(batch.schema))


class IcebergWriter(TableWriter):
    name = "iceberg"
    options = ("table", "catalog", "run_id")
    named_in_catalog = True
    package = PACKAGE

    def display(self, spec) -> str:
        return f"iceberg table {spec.table}"

    def _catalog(self, spec):
        return _catalog(spec.catalog, f"output {spec.table}", OutputError)

    def exists(self, spec) -> bool:
        return self._catalog(spec).table_exists(spec.table)

    def published(self, spec, run_id: str) -> int | None:
        catalog = self._catalog(spec)
        if not catalog.table_exists(spec.table):
            return None
        tbl = _load(catalog, spec.table, f"output {spec.table}", OutputError)
        return next((s.snapshot_id for s in reversed(tbl.snapshots()) if s.summary.get(RUN_KEY) == run_id), None)

    def publish(self, spec, staged, run_id: str) -> int:
        from pyiceberg.expressions import AlwaysTrue

        catalog = self._catalog(spec)
        if not catalog.table_exists(spec.table):
            namespace = spec.table.rsplit(".", 1)[0] if "." in spec.table else "default"
            catalog.create_namespace_if_not_exists(namespace)
            catalog.create_table(spec.table, schema=variable_lists(staged.schema))
        tbl = _load(catalog, spec.table, f"output {spec.table}", OutputError)
        files = self._copy_into(tbl, staged, run_id, spec)
        properties = {RUN_KEY: run_id}
        try:
            with tbl.transaction() as tx:
                if spec.mode == "overwrite":
                    tx.delete(AlwaysTrue(), snapshot_properties=properties)
                tx.add_files(files, snapshot_properties=properties)
        except (ValueError, TypeError) as exc:
            raise OutputError(f"output {spec.table}: this run's rows do not fit the Iceberg table: {exc}",
                              hint="the staged units are kept: write to another table, or drop this one") from None
        return self.published(spec, run_id)

    def scan(self, spec):
        import polars as pl

        return pl.scan_iceberg(_load(self._catalog(spec), spec.table, f"output {spec.table}", OutputError))

    @staticmethod
    def _copy_into(tbl, staged, run_id: str, spec) -> list[str]:
        """The staged parts written into the table's data folder (embeddings as lists: Iceberg has no
        fixed-size list), under names a retry writes again."""
        import fsspec
        import pyarrow.parquet as pq

        fs, root = fsspec.core.url_to_fs(tbl.location(), **spec.storage_options)
        folder = posixpath.join(root, "data")
        fs.makedirs(folder, exist_ok=True)
        schema, files = variable_lists(staged.schema), []
        compression = None if spec.compression == "none" else spec.compression
        for i, part in enumerate(staged.parts):
            target = posixpath.join(folder, layout.table_file_name(run_id, posixpath.basename(part)))
            with fs.open(target, "wb") as dst:
                pq.write_table(staged.table(i, schema), dst, compression=compression,
                               compression_level=spec.compression_level)
            faults.hit("table-file-copied")
            files.append(fs.unstrip_protocol(target) if "://" in tbl.location() else target)
        return files


FORMAT = IcebergFormat()
WRITER = IcebergWriter()
