"""Lance datasets (`pylance`), in and out.

In: the dataset at one version (input.version, or the latest), its fragments as pieces.

Out: a run's staged rows in one commit (append, overwrite, or a new dataset for mode error) whose
transaction properties carry the run's id: a retry that finds it does not commit again. Embeddings are
fixed-size lists already (`fixed_size_list<float32>[dim]`), the column type a Lance vector index takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from batchinfer import faults
from batchinfer.errors import InputError, OutputError
from batchinfer.io.formats.base import FileFormat, SourceBatch, TableListing, TableWriter, by_version, rebatch
from batchinfer.io.formats.object_store import object_store_options

PACKAGE = "pylance"
RUN_KEY = "batchinfer.run_id"
_FRAGMENT = "#fragment="
_LOOK_BACK = 1000  # commits searched for a run's id (a retry comes soon after its attempt)


def _lance(what: str, error=InputError):
    try:
        import lance
    except ImportError:
        raise error(f"{what} is a Lance dataset: reading and writing Lance needs the pylance package",
                    hint="pip install pylance") from None
    return lance


@by_version
def _dataset(url: str, options: str, version: int | None):
    """The dataset at `version` (the latest if None)."""
    lance = _lance(f"input {url}")
    try:
        return lance.dataset(url, version=version, storage_options=json.loads(options))
    except ValueError as exc:
        raise InputError(f"input {url}: no Lance dataset{'' if version is None else f' version {version}'} "
                         f"there: {exc}", hint="check input.path (and input.version)") from None


def _options(url: str, storage_options: dict) -> str:
    return json.dumps(object_store_options(url, storage_options), sort_keys=True)


class LanceFormat(FileFormat):
    name = "lance"
    suffixes = ()
    is_table = True
    table_options = ("version",)
    type_hint = "input.column must name a string column of the dataset"

    def is_table_folder(self, fs, root: str) -> bool:
        return fs.isdir(f"{root}/_versions")

    def _open(self, source, version: int | None):
        url = source.spec.paths[0]
        return _dataset(url, _options(url, source.spec.storage_options), version)

    def list_table(self, source, url: str | None) -> TableListing:
        version = source.spec.version if source.spec.version is not None else source.pin()
        ds = self._open(source, version)
        fragments = sorted(ds.get_fragments(), key=lambda f: f.fragment_id)
        return TableListing(ds.version, [f"{url}{_FRAGMENT}{f.fragment_id}" for f in fragments],
                            [None] * len(fragments), [f.count_rows() for f in fragments])

    def schema(self, source, path: str):
        return self._open(source, source.table_version).schema

    def batches(self, source, i: int, path: str, columns: list[str], text_column: str | None, *,
                keep_bad_rows: bool, first: int = 0, stop: int | None = None) -> Iterator[SourceBatch]:
        size = source.spec.batch_rows
        fragment = self._open(source, source.table_version).get_fragment(int(path.rsplit(_FRAGMENT, 1)[1]))
        for j, batch in enumerate(rebatch(fragment.to_batches(batch_size=size, columns=columns), size)):
            faults.hit("read")
            yield SourceBatch(i, path, j, source.conform_batch(batch, text_column), j * size)


class LanceWriter(TableWriter):
    name = "lance"
    options = ("run_id",)
    package = PACKAGE

    def _open(self, spec):
        lance = _lance(f"output {spec.path}", OutputError)
        try:
            return lance.dataset(spec.path, storage_options=object_store_options(spec.path, spec.storage_options))
        except ValueError:
            return None

    def exists(self, spec) -> bool:
        return self._open(spec) is not None

    def published(self, spec, run_id: str) -> int | None:
        ds = self._open(spec)
        if ds is None:
            return None
        for transaction in ds.get_transactions(recent_transactions=min(ds.version, _LOOK_BACK)):
            if transaction is not None and (transaction.transaction_properties or {}).get(RUN_KEY) == run_id:
                return transaction.read_version + 1
        return None

    def publish(self, spec, staged, run_id: str) -> int:
        lance = _lance(f"output {spec.path}", OutputError)
        mode = {"error": "create", "overwrite": "overwrite"}.get(spec.mode, "append")
        if mode == "append" and not self.exists(spec):
            mode = "create"
        try:
            ds = lance.write_dataset(staged.reader(), spec.path, schema=staged.schema, mode=mode,
                                     transaction_properties={RUN_KEY: run_id},
                                     storage_options=object_store_options(spec.path, spec.storage_options))
        except (OSError, ValueError) as exc:
            raise OutputError(f"output {spec.path}: this run's rows could not be committed to the Lance dataset: "
                              f"{exc}", hint="the staged units are kept: rerun with output.mode = 'overwrite' to "
                                             "replace the dataset, or write to another one") from None
        return ds.version

    def scan(self, spec):
        import polars as pl

        return pl.scan_pyarrow_dataset(self._open(spec))


FORMAT = LanceFormat()
WRITER = LanceWriter()
