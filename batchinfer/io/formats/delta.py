"""Delta Lake tables (`deltalake`), in and out.

In: the table at one version (input.version, the version current at input.as_of, or the latest), its data
files as pieces, partition columns filled from the log, input.partition_filter pruning partitions. Tables
whose files a plain Parquet read would misread (deletion vectors, column mapping) are refused by name.

Out (embeddings as lists: Delta has no fixed-size list): a run's staged rows in one commit (append, overwrite, or a new table for mode error), partitioned by
output.partition_by, carrying the run's id as a Delta transaction identifier (app id `batchinfer-RUN`,
the txn action Delta keeps for idempotent writers) and in the commit's metadata: a retry that finds the id
does not commit again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from batchinfer import faults
from batchinfer.errors import InputError, OutputError
from batchinfer.io.formats.base import (FileFormat, SourceBatch, TableListing, TableWriter, by_version,
                                        rebatch, variable_lists)
from batchinfer.io.formats.object_store import object_store_options

log = logging.getLogger("batchinfer")
PACKAGE = "deltalake"
RUN_KEY = "batchinfer.run_id"


def _deltalake(what: str, error=InputError):
    try:
        import deltalake
    except ImportError:
        raise error(f"{what} is a Delta table: reading and writing Delta needs the deltalake package",
                    hint="pip install deltalake") from None
    return deltalake


@by_version
def _table(url: str, options: str, version: int | None):
    """The table at `version` (the latest if None)."""
    deltalake = _deltalake(f"input {url}")
    storage = json.loads(options)
    try:
        dt = deltalake.DeltaTable(url, version=version, storage_options=storage)
    except deltalake.exceptions.TableNotFoundError:
        raise InputError(f"input {url} is not a Delta table (no _delta_log/ there)",
                         hint="check input.path, or set input.format for files") from None
    except Exception as exc:  # noqa: BLE001 - deltalake raises its own errors for a missing version
        if version is not None and "version" in str(exc).lower():
            raise InputError(f"input {url}: the Delta table has no version {version} (any more): {exc}",
                             hint="a vacuumed or expired version cannot be read; read another input.version, or "
                                  "use output.mode = 'overwrite' to start over on the latest") from None
        raise
    return dt


class DeltaFormat(FileFormat):
    name = "delta"
    suffixes = ()
    is_table = True
    table_options = ("version", "as_of", "partition_filter")
    type_hint = "input.column must name a string column of the table"

    def is_table_folder(self, fs, root: str) -> bool:
        return fs.isdir(f"{root}/_delta_log")

    def _open(self, source, version: int | None):
        url = source.spec.paths[0]
        options = json.dumps(object_store_options(url, source.spec.storage_options), sort_keys=True)
        return _table(url, options, version)

    def list_table(self, source, url: str | None) -> TableListing:
        spec = source.spec
        version = spec.version if spec.version is not None else source.pin()
        dt = self._open(source, version)
        if spec.as_of is not None and spec.version is None and version is None:
            try:
                dt.load_as_version(spec.as_of)
            except Exception as exc:  # noqa: BLE001
                raise InputError(f"input {url}: no version of the Delta table at input.as_of = {spec.as_of!r}: {exc}",
                                 hint="write the time as ISO 8601 with its zone, e.g. '2026-12-01T00:00:00+00:00'"
                                 ) from None
            dt = self._open(source, dt.version())
        _refuse_unreadable(dt, url)
        if version is not None and spec.version is None:
            latest = self._open(source, None).version()
            if latest != version:
                log.warning("input %s: reading version %d, which an unfinished earlier run of this job read (the "
                            "table is at version %d now); run the job again afterwards for the newer rows",
                            url, version, latest)
        actions = pa.table(dt.get_add_actions(flatten=True))
        actions = actions.filter(_selected(actions, spec.partition_filter or (), dt, url))
        order = sorted(range(actions.num_rows), key=actions["path"].to_pylist().__getitem__)
        pick = lambda name: [actions[name][i].as_py() for i in order]  # noqa: E731
        return TableListing(dt.version(), pick("path"), pick("size_bytes"), pick("num_records"))

    def _fragments(self, source) -> tuple[pa.Schema, dict]:
        """The version's dataset schema and fragments by path, made once per version (not per piece)."""
        url = source.spec.paths[0]
        return _fragments(url, json.dumps(object_store_options(url, source.spec.storage_options), sort_keys=True),
                          source.table_version)

    def schema(self, source, path: str) -> pa.Schema:
        return self._fragments(source)[0]

    def batches(self, source, i: int, path: str, columns: list[str], text_column: str | None, *,
                keep_bad_rows: bool, first: int = 0, stop: int | None = None) -> Iterator[SourceBatch]:
        size = source.spec.batch_rows
        schema, fragments = self._fragments(source)
        stream = fragments[path].to_batches(schema=schema, columns=columns, batch_size=size)
        for j, batch in enumerate(rebatch(stream, size)):
            faults.hit("read")
            yield SourceBatch(i, path, j, source.conform_batch(batch, text_column), j * size)


_COMPARE = {"=": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater,
            ">=": pc.greater_equal}


@lru_cache(maxsize=8)
def _fragments(url: str, options: str, version: int) -> tuple[pa.Schema, dict]:
    dataset = _table(url, options, version).to_pyarrow_dataset()
    return dataset.schema, {f.path: f for f in dataset.get_fragments()}


def _selected(actions: pa.Table, filters, dt, url: str) -> pa.Array:
    """Which data files (add actions) input.partition_filter keeps: (column, op, value) triples, all true."""
    columns = dt.metadata().partition_columns
    keep = pa.array([True] * actions.num_rows)
    for column, op, value in filters:
        if column not in columns:
            raise InputError(f"input {url}: input.partition_filter names {column!r}, which is not a partition "
                             "column of the table",
                             hint=f"filter on its partition columns: {', '.join(columns) or '(it has none)'}")
        if op not in (*_COMPARE, "in", "not in"):
            raise InputError(f"input {url}: input.partition_filter: {op!r} is not an operator",
                             hint=f"use one of {', '.join([*_COMPARE, 'in', 'not in'])}")
        values = actions[f"partition.{column}"]
        try:
            if op in ("in", "not in"):
                hit = pc.is_in(values, value_set=pa.array(list(value)).cast(values.type))
                hit = pc.invert(hit) if op == "not in" else hit
            else:
                hit = _COMPARE[op](values, pa.scalar(value).cast(values.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as exc:
            raise InputError(f"input {url}: input.partition_filter [{column!r}, {op!r}, {value!r}]: the value does not "
                             f"fit the column ({values.type}): {exc}") from None
        keep = pc.and_(keep, pc.fill_null(hit, False))
    return keep


def _refuse_unreadable(dt, url: str) -> None:
    features = set(dt.protocol().reader_features or [])
    mapping = dt.metadata().configuration.get("delta.columnMapping.mode", "none")
    if "deletionVectors" in features:
        raise InputError(f"input {url}: the Delta table uses deletion vectors, which deltalake's file reads do not "
                         "apply", hint="purge them (REORG TABLE ... APPLY (PURGE)) or read a copy without them")
    if mapping != "none" or "columnMapping" in features:
        raise InputError(f"input {url}: the Delta table uses column mapping ({mapping}), which deltalake's file reads "
                         "do not apply", hint="read a copy of the table without column mapping")


class DeltaWriter(TableWriter):
    name = "delta"
    options = ("partition_by", "run_id")
    package = PACKAGE

    def _storage(self, spec):
        return object_store_options(spec.path, spec.storage_options)

    def exists(self, spec) -> bool:
        deltalake = _deltalake(f"output {spec.path}", OutputError)
        return deltalake.DeltaTable.is_deltatable(spec.path, storage_options=self._storage(spec))

    def published(self, spec, run_id: str) -> int | None:
        if not self.exists(spec):
            return None
        dt = _deltalake(spec.path, OutputError).DeltaTable(spec.path, storage_options=self._storage(spec))
        if dt.transaction_version(_app_id(run_id)) is None:
            return None
        return next((int(h["version"]) for h in dt.history() if h.get(RUN_KEY) == run_id), dt.version())

    def publish(self, spec, staged, run_id: str) -> int:
        deltalake = _deltalake(f"output {spec.path}", OutputError)
        properties = deltalake.CommitProperties(app_transactions=[deltalake.Transaction(_app_id(run_id), 1)],
                                                custom_metadata={RUN_KEY: run_id})
        mode = {"error": "error", "overwrite": "overwrite"}.get(spec.mode, "append")
        try:
            deltalake.write_deltalake(spec.path, staged.reader(variable_lists(staged.schema)), mode=mode, partition_by=spec.partition_by or None,
                                      schema_mode="overwrite" if mode == "overwrite" else None,
                                      commit_properties=properties, storage_options=self._storage(spec))
        except (deltalake.exceptions.SchemaMismatchError, ValueError) as exc:
            raise OutputError(f"output {spec.path}: this run's rows do not fit the Delta table: {exc}",
                              hint="the staged units are kept: rerun with output.mode = 'overwrite' to replace the "
                                   "table, or write to another table") from None
        return self.published(spec, run_id)


    def scan(self, spec):
        import polars as pl

        return pl.scan_delta(spec.path, storage_options=self._storage(spec))


def _app_id(run_id: str) -> str:
    return f"batchinfer-{run_id}"


FORMAT = DeltaFormat()
WRITER = DeltaWriter()
