"""Table formats in and out (Delta Lake, Iceberg, Lance, partitioned Parquet) with the real libraries on
local paths (Delta also on the suite's S3 server): every output read back by polars and pyarrow, a run
committed once whatever is retried, a retry reading the input version its first attempt read.
The SIGKILL campaign per output format is tests/test_tables_kill.py."""

from __future__ import annotations

import json
from pathlib import Path

import deltalake
import lance
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from pyiceberg.catalog import load_catalog

import batchinfer
from batchinfer.errors import InputError, JobFileError, OutputError

TABLE_FORMATS = ("delta", "iceberg", "lance", "parquet-partitioned")
WORDS = "good bad fine awful great terrible movie plot actor scene boring moving lovely dull".split()


def frame(start: int, n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({"id": np.arange(start, start + n), "text": [" ".join(rng.choice(WORDS, 6)) for _ in range(n)],
                         "day": [f"2026-12-0{1 + i % 3}" for i in range(n)]})


def catalog_of(root: Path) -> dict:
    (root / "warehouse").mkdir(parents=True, exist_ok=True)
    return {"name": "local", "type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}",
            "warehouse": f"file://{root / 'warehouse'}"}


def output_of(fmt: str, root: Path, **extra) -> dict:
    """The output section for `fmt` under `root` (Iceberg: a table in a SQL catalog there, staged in root/stage)."""
    if fmt == "iceberg":
        return {"format": "iceberg", "path": str(root / "stage"), "table": "nightly.scores",
                "catalog": catalog_of(root), **extra}
    if fmt == "parquet-partitioned":
        return {"format": "parquet", "path": str(root / "table"), "partition_by": ["day"], **extra}
    return {"format": fmt, "path": str(root / "table"), **extra}


def job(model: Path, inputs: dict, output: dict, **runtime) -> dict:
    return {"input": {"column": "text", "batch_rows": 20, **inputs},
            "model": {"name": str(model), "task": "text-classification"},
            "output": output, "runtime": {"progress": "never", **runtime}}


def read_output(output: dict) -> pl.DataFrame:
    """The table as polars reads it, checked equal to what pyarrow (through the format's library) reads."""
    fmt, path = output["format"], output["path"]
    if fmt == "delta":
        frame_, table = pl.read_delta(path), deltalake.DeltaTable(path).to_pyarrow_table()
    elif fmt == "lance":
        dataset = lance.dataset(path)
        frame_, table = pl.scan_pyarrow_dataset(dataset).collect(), dataset.to_table()
    elif fmt == "iceberg":
        props = dict(output["catalog"])
        tbl = load_catalog(props.pop("name"), **props).load_table(output["table"])
        frame_, table = pl.scan_iceberg(tbl).collect(), tbl.scan().to_arrow()
    else:
        frame_ = pl.read_parquet(f"{path}/**/*.parquet", hive_partitioning=True, try_parse_hive_dates=False)
        table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == frame_.height
    assert sorted(table.column("id").to_pylist()) == sorted(frame_["id"].to_list())
    return frame_.sort("id")


def commits(output: dict) -> int:
    """Commits that carry a batchinfer run id."""
    fmt, path = output["format"], output["path"]
    if fmt == "delta":
        return sum("batchinfer.run_id" in h for h in deltalake.DeltaTable(path).history())
    if fmt == "lance":
        dataset = lance.dataset(path)
        return sum(1 for t in dataset.get_transactions(dataset.version)
                   if t is not None and "batchinfer.run_id" in (t.transaction_properties or {}))
    if fmt == "iceberg":
        props = dict(output["catalog"])
        tbl = load_catalog(props.pop("name"), **props).load_table(output["table"])
        return len({s.summary.get("batchinfer.run-id") for s in tbl.snapshots()} - {None})
    return len({p.name.split("-")[1] for p in Path(path).rglob("part-*.parquet")})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_classifier) -> pl.DataFrame:
    """The predictions of a Parquet-folder run over the same rows: what every table must hold."""
    root = tmp_path_factory.mktemp("reference")
    frame(0, 130).write_parquet(root / "in.parquet")
    out = root / "out"
    batchinfer.run(job(tiny_classifier, {"path": str(root / "in.parquet")}, {"path": str(out)}))
    return pl.read_parquet(str(out / "*.parquet")).sort("id")


@pytest.mark.parametrize("fmt", TABLE_FORMATS)
def test_a_table_holds_each_run_once(tmp_path, tiny_classifier, reference, fmt):
    """append: the rows of the Parquet run; the same job again: 'already complete', nothing committed;
    new input: its rows added; overwrite: only the last run's rows. Read back by polars and pyarrow."""
    frame(0, 130).write_parquet(tmp_path / "in.parquet")
    output = output_of(fmt, tmp_path, mode="append")
    spec = job(tiny_classifier, {"path": str(tmp_path / "in.parquet")}, output)
    first = batchinfer.run(spec)
    assert (first.rows, first.already_complete) == (130, False)
    got = read_output(output)
    assert got.select(reference.columns).equals(reference.select(reference.columns).cast(got.select(
        reference.columns).schema))
    again = batchinfer.run(spec)
    assert again.already_complete and again.rows == 130 and again.exit_code == 0
    assert read_output(output).height == 130 and commits(output) == 1

    frame(500, 30, seed=1).write_parquet(tmp_path / "in.parquet")  # the input changed: a new run
    assert batchinfer.run(spec).rows == 30
    assert sorted(read_output(output)["id"].to_list()) == [*range(130), *range(500, 530)]
    assert commits(output) == 2

    replaced = batchinfer.run(job(tiny_classifier, {"path": str(tmp_path / "in.parquet")},
                                  {**output, "mode": "overwrite", "keep_columns": ["id", "day", "text"]}))
    assert replaced.rows == 30 and read_output(output)["id"].to_list() == list(range(500, 530))
    staged = list(tmp_path.rglob("runs/*/part-*.parquet"))
    assert staged == [], f"staged parts left after the commits: {staged[:3]}"


@pytest.mark.parametrize("fmt", TABLE_FORMATS)
def test_mode_error_refuses_a_table_that_exists(tmp_path, tiny_classifier, fmt):
    frame(0, 10).write_parquet(tmp_path / "in.parquet")
    output = output_of(fmt, tmp_path)  # mode = "error", the default
    spec = job(tiny_classifier, {"path": str(tmp_path / "in.parquet")}, output)
    batchinfer.run(spec)
    frame(0, 12).write_parquet(tmp_path / "in.parquet")
    with pytest.raises(OutputError, match="already exists") as err:
        batchinfer.run(spec)
    assert "append" in err.value.hint
    assert read_output(output).height == 10


@pytest.mark.parametrize("fmt", ["delta", "lance", "iceberg"])
def test_a_table_input_reads_one_version(tmp_path, tiny_classifier, fmt):
    """The latest version, or input.version; a retry of an interrupted run reads the version its first attempt
    read although the table moved on; the next run reads the latest."""
    table_in = tmp_path / "input"
    first, more = frame(0, 90), frame(1000, 40, seed=3)
    if fmt == "delta":
        deltalake.write_deltalake(table_in, first.to_arrow())
        inputs, grow = {"path": str(table_in)}, lambda: deltalake.write_deltalake(table_in, more.to_arrow(), mode="append")
        v0 = 0
    elif fmt == "lance":
        lance.write_dataset(first.to_arrow(), table_in)
        inputs, grow = {"path": str(table_in)}, lambda: lance.write_dataset(more.to_arrow(), table_in, mode="append")
        v0 = 1
    else:
        props = catalog_of(tmp_path / "in-catalog")
        name = props.pop("name")
        cat = load_catalog(name, **props)
        cat.create_namespace("raw")
        tbl = cat.create_table("raw.reviews", schema=first.to_arrow().schema)
        tbl.append(first.to_arrow())
        inputs = {"format": "iceberg", "table": "raw.reviews", "catalog": {"name": name, **props}}
        grow = lambda: cat.load_table("raw.reviews").append(more.to_arrow())  # noqa: E731
        v0 = tbl.current_snapshot().snapshot_id
    out = tmp_path / "out"
    spec = job(tiny_classifier, inputs, {"path": str(out), "mode": "resume"})
    # an interrupted run: its first units committed, then the input moved on
    batchinfer.run(spec)
    assert json.loads((out / "_batchinfer" / "plan.json").read_text())["table"] == v0
    done = sorted((out / "_batchinfer" / "done").iterdir())
    for entry in done[2:]:  # make it look cut short: only two units committed
        entry.unlink()
    (out / "_SUCCESS").unlink()
    grow()
    resumed = batchinfer.run(spec)
    assert resumed.skipped_units == 2 and resumed.rows == 90
    assert sorted(pl.read_parquet(str(out / "*.parquet"))["id"].to_list()) == list(range(90))
    latest = batchinfer.run({**spec, "output": {"path": str(tmp_path / "out2")}})
    assert latest.rows == 130
    pinned = batchinfer.run({**spec, "input": {**spec["input"], "version": v0},
                             "output": {"path": str(tmp_path / "out3")}})
    assert pinned.rows == 90


def test_delta_input_options(tmp_path, tiny_classifier):
    """Partitions filled from the log and pruned by input.partition_filter; input.as_of picks a version."""
    table_in = tmp_path / "input"
    deltalake.write_deltalake(table_in, frame(0, 60).to_arrow(), partition_by=["day"])
    deltalake.write_deltalake(table_in, frame(100, 30).to_arrow(), partition_by=["day"], mode="append")
    first_commit = deltalake.DeltaTable(table_in, version=0).history()[-1]["timestamp"]
    out = tmp_path / "out"
    result = batchinfer.run(job(tiny_classifier, {"path": str(table_in), "partition_filter": [["day", "=", "2026-12-02"]]},
                                {"path": str(out)}))
    got = pl.read_parquet(str(out / "*.parquet"))
    assert result.rows == 30 and set(got["day"]) == {"2026-12-02"}
    import datetime

    as_of = datetime.datetime.fromtimestamp(first_commit / 1000 + 0.0005, datetime.timezone.utc).isoformat()
    old = batchinfer.run(job(tiny_classifier, {"path": str(table_in), "as_of": as_of},
                             {"path": str(tmp_path / "old")}))
    assert old.rows == 60
    with pytest.raises(InputError, match="partition_filter"):
        batchinfer.run(job(tiny_classifier, {"path": str(table_in), "partition_filter": [["text", "=", "x"]]},
                           {"path": str(tmp_path / "bad")}))
    with pytest.raises(InputError, match="no version 9"):
        batchinfer.run(job(tiny_classifier, {"path": str(table_in), "version": 9}, {"path": str(tmp_path / "v9")}))
    with pytest.raises(InputError, match="option of a table input"):
        frame(0, 5).write_parquet(tmp_path / "plain.parquet")
        batchinfer.run(job(tiny_classifier, {"path": str(tmp_path / "plain.parquet"), "version": 1},
                           {"path": str(tmp_path / "plain-out")}))


def test_iceberg_row_filter(tmp_path, tiny_classifier):
    props = catalog_of(tmp_path)
    name = props.pop("name")
    cat = load_catalog(name, **props)
    cat.create_namespace("raw")
    cat.create_table("raw.t", schema=frame(0, 1).to_arrow().schema).append(frame(0, 50).to_arrow())
    result = batchinfer.run(job(tiny_classifier, {"format": "iceberg", "table": "raw.t", "catalog": {"name": name, **props},
                                                  "row_filter": "id >= 40"}, {"path": str(tmp_path / "out")}))
    assert result.rows == 10
    assert sorted(pl.read_parquet(str(tmp_path / "out" / "*.parquet"))["id"]) == list(range(40, 50))


def test_run_id_names_a_run_whatever_its_input_did(tmp_path, tiny_classifier):
    """A scheduler's retry with the same run_id commits nothing twice, even after the input changed."""
    frame(0, 40).write_parquet(tmp_path / "in.parquet")
    output = output_of("delta", tmp_path, mode="append", run_id="scores-2026-12-01")
    spec = job(tiny_classifier, {"path": str(tmp_path / "in.parquet")}, output)
    batchinfer.run(spec)
    frame(0, 55).write_parquet(tmp_path / "in.parquet")
    retry = batchinfer.run(spec)
    assert retry.already_complete and read_output(output).height == 40
    assert deltalake.DeltaTable(output["path"]).transaction_version("batchinfer-scores-2026-12-01") == 1


def test_an_append_that_does_not_fit_keeps_its_staged_units(tmp_path, tiny_classifier):
    """A schema the table does not take: an OutputError naming the table; the rerun with overwrite commits
    the staged units without predicting them again."""
    frame(0, 40).write_parquet(tmp_path / "in.parquet")
    output = output_of("delta", tmp_path, mode="append")
    batchinfer.run(job(tiny_classifier, {"path": str(tmp_path / "in.parquet")}, {**output, "keep_columns": ["id"]}))
    spec = job(tiny_classifier, {"path": str(tmp_path / "in.parquet")}, output)
    with pytest.raises(OutputError, match="do not fit the Delta table"):
        batchinfer.run(spec)
    assert read_output(output).height == 40
    fixed = batchinfer.run({**spec, "output": {**output, "mode": "overwrite"}})
    assert fixed.rows_this_run == 0 and fixed.skipped_units == 2
    assert read_output(output).columns == ["id", "text", "day", "label", "score"]


def test_job_file_errors_for_table_options(tiny_classifier):
    base = {"input": {"path": "x.parquet", "column": "text"}, "model": {"name": str(tiny_classifier),
                                                                        "task": "text-classification"}}
    bad = [({"path": "o", "mode": "append"}, "a Parquet folder of parts takes"),
           ({"path": "o", "format": "iceberg"}, "give output.table and output.catalog"),
           ({"path": "o", "format": "lance", "partition_by": ["day"]}, "partition_by is not an option"),
           ({"path": "o", "format": "orc"}, "unknown output format 'orc'")]
    for output, message in bad:
        with pytest.raises(JobFileError, match=message):
            batchinfer.run({**base, "output": output})
    with pytest.raises(JobFileError, match="input.row_filter is an option of input.format = 'iceberg'"):
        batchinfer.run({**base, "input": {"path": "x", "column": "text", "format": "delta", "row_filter": "a"},
                        "output": {"path": "o"}})


def test_lance_embeddings_take_a_vector_index(tmp_path, tiny_encoder):
    frame(0, 300).write_parquet(tmp_path / "in.parquet")
    path = str(tmp_path / "vectors")
    batchinfer.run({"input": {"path": str(tmp_path / "in.parquet"), "column": "text"},
                    "model": {"name": str(tiny_encoder), "task": "feature-extraction"},
                    "output": {"path": path, "format": "lance", "mode": "append"}})
    dataset = lance.dataset(path)
    assert pa.types.is_fixed_size_list(dataset.schema.field("embedding").type)
    dataset = dataset.create_index("embedding", index_type="IVF_PQ", num_partitions=1, num_sub_vectors=2)
    probe = dataset.take([7], columns=["embedding"])["embedding"].to_pylist()[0]
    hits = dataset.to_table(nearest={"column": "embedding", "q": np.array(probe, np.float32), "k": 3},
                            columns=["id"])["id"].to_pylist()
    assert 7 in hits


def test_delta_on_s3(tmp_path, tiny_classifier, s3_server):
    """Delta through the suite's S3 server: written with conditional PUTs, read back, appended once."""
    import boto3

    boto3.client("s3", endpoint_url=s3_server, aws_access_key_id="k", aws_secret_access_key="s",
                 region_name="us-east-1").create_bucket(Bucket="lake")
    frame(0, 50).write_parquet(tmp_path / "in.parquet")
    storage = {"key": "k", "secret": "s", "client_kwargs": {"endpoint_url": s3_server, "region_name": "us-east-1"}}
    output = {"format": "delta", "path": "s3://lake/scores", "mode": "append", "storage_options": storage,
              "partition_by": ["day"]}
    spec = job(tiny_classifier, {"path": str(tmp_path / "in.parquet")}, output)
    assert batchinfer.run(spec).rows == 50
    assert batchinfer.run(spec).already_complete
    store = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": s3_server,
             "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true"}
    assert pl.read_delta("s3://lake/scores", storage_options=store).height == 50
    assert deltalake.DeltaTable("s3://lake/scores", storage_options=store).to_pyarrow_table().num_rows == 50
    again = batchinfer.run(job(tiny_classifier, {"path": "s3://lake/scores", "storage_options": storage},
                               {"path": str(tmp_path / "back"), "keep_columns": ["id", "day"]}))
    assert again.rows == 50 and set(pl.read_parquet(str(tmp_path / "back" / "*.parquet"))["day"]) == {
        "2026-12-01", "2026-12-02", "2026-12-03"}


@pytest.mark.parametrize("fmt", ["delta", "iceberg", "lance"])
def test_the_polars_api_writes_tables(tmp_path, tiny_classifier, fmt):
    """A DataFrame: its predictions returned and committed as one run; a LazyFrame: streamed into the table,
    the table scanned back."""
    output = output_of(fmt, tmp_path)
    extra = {k: v for k, v in output.items() if k in ("table", "catalog")}
    where = output["path"]
    got = batchinfer.predict(frame(0, 25), "text", task="text-classification", model=str(tiny_classifier),
                             output=where, format=output["format"], mode="append", **extra)
    assert got.height == 25 and "label" in got.columns
    lazy = batchinfer.predict(frame(100, 15).lazy(), "text", task="text-classification", model=str(tiny_classifier),
                              output=where, format=output["format"], mode="append", **extra)
    assert isinstance(lazy, pl.LazyFrame) and lazy.collect().height == 40
    assert sorted(read_output(output)["id"].to_list()) == [*range(25), *range(100, 115)]


@pytest.mark.parametrize("fmt", TABLE_FORMATS)
def test_embeddings_and_entities_read_back_from_every_format(tmp_path, tiny_encoder, tiny_ner, fmt):
    """Fixed-size lists (embeddings: lists where the format has no fixed size) and lists of structs (entities)
    read back by polars and pyarrow with the values a Parquet folder holds."""
    frame(0, 30).write_parquet(tmp_path / "in.parquet")
    for model, task in ((tiny_encoder, "feature-extraction"), (tiny_ner, "token-classification")):
        base = {"input": {"path": str(tmp_path / "in.parquet"), "column": "text"},
                "model": {"name": str(model), "task": task}, "runtime": {"progress": "never"}}
        where = tmp_path / task
        batchinfer.run({**base, "output": {"path": str(where / "parquet")}})
        want = pl.read_parquet(str(where / "parquet" / "*.parquet")).sort("id")
        output = output_of(fmt, where, mode="append")
        batchinfer.run({**base, "output": output})
        got = read_output(output)
        column = "embedding" if task == "feature-extraction" else "entities"
        assert got[column].to_list() == want[column].to_list(), (fmt, task)
