"""The Ray executor: the same job on Ray Data, committed with batchinfer's own exactly-once protocol.

`RayExecutor` implements engine/executors.py's protocol; the per-unit work is engine/units.py's.

The driver lists and checks the input, holds the output lock and plans work items: one per unit of a Parquet
file (its rows are known from the footer), one per CSV file (read whole). Ray Data hands the items, one per
block, to a pool of actors that each hold one cached Pipeline. An actor reads its item with batchinfer's
reader, predicts, and writes each unit's part and manifest entry exactly as the local executor does. The
driver commits once every item is done. Units and part names are the local executor's, so both executors
write the same output, and a job started on one can resume on the other.

Ray's own `read_parquet`/`write_parquet` are not used for the rows: its blocks do not line up with units
from one run to the next (so a rerun could not tell which rows are done), its CSV reader lacks batchinfer's
row checks, and `write_parquet` is neither atomic nor idempotent.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import warnings
from contextlib import contextmanager
from typing import Any

import numpy as np

from batchinfer.devices import parse_device
from batchinfer.engine.executors import Units
from batchinfer.engine.progress import StageTimes
from batchinfer.errors import BatchinferError, ClusterError, DeviceError, JobFileError
from batchinfer.io.layout import file_of, unit_name

log = logging.getLogger("batchinfer")

FREE_CPU_SHARE = 0.1  # of each actor's CPUs left to Ray's own tasks: a pool that takes every CPU hangs


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise JobFileError("runtime.executor = 'ray' needs Ray Data",
                           hint='pip install "batchinfer[ray]" (or "ray[data]")') from None
    return ray


class RayExecutor:
    """Units on Ray Data actors, each with its own Pipeline; the driver's sink commits them."""

    def check(self, spec, source) -> None:
        """Ray Data is installed, and the job reads files (a frame lives in this process only)."""
        from batchinfer.io import Source

        import_ray()
        if not isinstance(source, Source):
            raise JobFileError("runtime.executor = 'ray' runs jobs that read files; a polars frame is predicted "
                               "here", hint="leave runtime.executor as 'local' for frames, or write the frame to "
                                            "Parquet")
        check_reachable(spec.runtime.ray_address)

    def run(self, units: Units, *, pipe=None, on_rows=None) -> dict:
        """`pipe` is not used: each actor builds its own from the spec. `timings`: the actors' busy seconds
        per stage, added up (so they exceed the wall time by the actors' count as well as the overlap)."""
        result = run_units(units.spec, units.source, units.keep, units.predictions, units.sink, units.done,
                           on_rows=on_rows)
        units.sink.remove_temp_files()  # parts a killed worker left half-written (its unit was redone by another)
        return result


REACH_TIMEOUT = 5.0  # seconds to open a TCP connection to the cluster before the model loads


def check_reachable(address: str | None) -> None:
    """A cluster address (`ray://host:port` or `host:port`) answers on its port, and a `ray://` one has Ray
    client installed: both fail here, before the model loads, not after."""
    if not address or address == "auto":
        return
    client = address.startswith("ray://")
    if client:
        try:
            import grpc  # noqa: F401  (what Ray client needs, from ray[client])
        except ImportError:
            raise ClusterError(f"runtime.ray_address = {address!r} needs Ray client, which is not installed",
                               hint='pip install "batchinfer[ray]" (or "ray[client]")') from None
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise JobFileError(f"runtime.ray_address = {address!r} is not host:port, ray://host:port or 'auto'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_TIMEOUT).close()
    except OSError as exc:
        raise ClusterError(f"the Ray cluster at {address} cannot be reached: {exc}",
                           hint="check runtime.ray_address (or --ray-address) and that the cluster is up; "
                                "nothing was loaded or written") from None


def plan_items(batch_counts: list[int | None], formats: list[str], done) -> list[dict[str, int]]:
    """Work items in input order: each Parquet unit not done yet; each file read whole (CSV, JSON Lines: its
    units are skipped inside)."""
    items = []
    for i, count in enumerate(batch_counts):
        if count is None:
            items.append({"file": i, "first": 0, "stop": -1})
            continue
        for b in range(max(count, 1)):  # an empty file is one unit: its empty part carries the schema
            if unit_name(i, b) not in done:
                items.append({"file": i, "first": b, "stop": b + 1})
    return items


class UnitWorker:
    """A Ray actor: one cached Pipeline; reads, predicts and writes the units of the work items it gets."""

    def __init__(self, spec, files: list[str], formats: list[str], schema, read_types: dict, target,
                 done: list[str], keep: list[str], predictions: dict[str, str], threads: int, output=None,
                 table=None) -> None:
        from batchinfer.io import ParquetSink, Source
        from batchinfer.pipelines import build_pipeline

        self.spec = spec
        self.pipe = build_pipeline(spec.model, spec.runtime.model_copy(update={"threads": threads,
                                                                                "device": actor_device(spec.runtime)}))
        self.source = Source.of_table(spec.input, table, formats, schema, read_types) if table is not None \
            else Source.of_files(spec.input, files, formats, schema, read_types)
        self.sink = ParquetSink.writer_into(output or spec.output, target)
        self.done = set(done)
        self.keep, self.predictions = keep, predictions

    def __call__(self, items: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from batchinfer.engine.units import process_units

        out: dict[str, list] = {"file": [], "first": [], "rows_this_run": [], "rows_in": [], "error": [],
                                "error_type": [], "hint": [], **{k: [] for k in StageTimes().counts()}}
        for file, first, stop in zip(items["file"], items["first"], items["stop"]):
            error = error_type = hint = ""
            counts = {"rows_this_run": 0, "rows_in": 0}
            stages = StageTimes()
            try:
                counts = process_units(self.spec, self.source, self.keep, self.predictions, self.sink, self.pipe,
                                       self.done, files=[int(file)], first=int(first),
                                       stop=None if stop < 0 else int(stop), stages=stages)
            except BatchinferError as exc:  # deterministic (a bad row, an unreadable file): report, do not retry
                error, error_type, hint = exc.message, type(exc).__name__, exc.hint or ""
            for key, value in (("file", int(file)), ("first", int(first)), ("error", error),
                               ("error_type", error_type), ("hint", hint), *counts.items(),
                               *stages.counts().items()):
                out[key].append(value)
        return {k: np.array(v) for k, v in out.items()}


def actor_layout(runtime, cluster_cpus: float, items: int, cluster_gpus: float = 0) -> tuple[int, int, float, int]:
    """(actors, threads per actor, CPUs each actor reserves, GPUs each reserves) for this cluster and job.
    On a CUDA device (or 'auto' where the cluster has GPUs): one actor per GPU, each holding one."""
    threads = runtime.threads or 1
    cpus = runtime.ray_cpus_per_actor or threads * (1 - FREE_CPU_SHARE)
    device = parse_device(runtime.device)
    gpus = 1 if getattr(device, "kind", None) == "cuda" or (device is None and cluster_gpus >= 1) else 0
    if gpus:
        actors = runtime.ray_actors or max(1, math.floor(cluster_gpus))
    else:
        actors = runtime.ray_actors or max(1, math.floor(cluster_cpus / max(cpus, threads)))
    return max(1, min(actors, items)), threads, cpus, gpus


def check_gpus(runtime, resources: dict, gpus: int) -> None:
    """DeviceError if actors want a GPU the cluster does not have: they would wait for one for ever."""
    if gpus and resources.get("GPU", 0) < gpus:
        have = ", ".join(f"{k} {v:g}" for k, v in sorted(resources.items()) if k in ("CPU", "GPU", "memory"))
        raise DeviceError(f"runtime.device = {runtime.device!r}: the Ray cluster has no GPU (its resources: "
                          f"{have})", hint="add GPU nodes to the cluster, or use runtime.device = 'cpu'")


def actor_device(runtime) -> str:
    """The device an actor's model runs on: Ray gives an actor its GPU as the only one it sees (through
    CUDA_VISIBLE_DEVICES), so 'cuda:N' on the driver is 'cuda' there."""
    return "cuda" if getattr(parse_device(runtime.device), "kind", None) == "cuda" else runtime.device


def forwarded_env() -> dict[str, str]:
    """batchinfer's own settings (cache folder, test hooks) reach the workers as they are on the driver."""
    return {k: v for k, v in os.environ.items() if k.startswith("BATCHINFER_")}


def connect(runtime) -> bool:
    """Join `runtime.ray_address`, or start a local instance on loopback. False if Ray was already set up
    (a notebook's own `ray.init`): then it is left running after the job."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True,
                               "runtime_env": {"env_vars": forwarded_env()}}
    try:
        if runtime.ray_address:
            ray.init(address=runtime.ray_address, **options)
        else:  # a private instance for this run: nothing listens beyond this machine
            ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", **options)
    except (OSError, RuntimeError, ValueError) as exc:
        where = runtime.ray_address or "a local instance"
        raise ClusterError(f"cannot start or reach Ray ({where}): {exc}",
                           hint="check runtime.ray_address (or --ray-address) and that the cluster is up") from None
    return True


def run_units(spec, source, keep: list[str], predictions: dict[str, str], sink, done, on_rows=None) -> dict:
    """Predict every unit not in `done` on Ray; returns the row counts of this run (the driver commits)."""
    ray = import_ray()
    ours = connect(spec.runtime)
    try:
        return _run(ray, spec, source, keep, predictions, sink, done, on_rows)
    finally:
        if ours:
            ray.shutdown()


def _run(ray, spec, source, keep, predictions, sink, done, on_rows) -> dict:
    items = plan_items(source.batch_counts(), source.formats, done)
    totals = {"rows_this_run": 0, "rows_in": 0}
    stages = StageTimes()
    if not items:
        return totals
    resources = ray.cluster_resources()
    actors, threads, cpus, gpus = actor_layout(spec.runtime, resources.get("CPU", 1), len(items),
                                               resources.get("GPU", 0))
    check_gpus(spec.runtime, resources, gpus)
    log.info("ray: %d work item(s) on %d actor(s), %d thread(s) and %.2f CPU%s each", len(items), actors, threads,
             cpus, f" and {gpus} GPU" if gpus else "")
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # stderr stays ours (and JSON with --log-format json)
    from batchinfer.io.formats import file_format

    whole = {i for i, fmt in enumerate(source.formats) if not file_format(fmt).starts_anywhere}
    done_in_whole = [u for u in done if file_of(u) in whole]  # Parquet items are planned around
    with _job_settings(ray.data.DataContext.get_current()):  # a dataset copies the settings when made
        dataset = ray.data.from_items(items, override_num_blocks=len(items))  # an item per block: all actors work
        with warnings.catch_warnings():  # Ray 2.60 deprecates ray_remote_args with no named max_restarts yet
            warnings.simplefilter("ignore", DeprecationWarning)
            results = dataset.map_batches(
                UnitWorker, batch_size=1, num_cpus=cpus, **({"num_gpus": gpus} if gpus else {}),
                compute=ray.data.ActorPoolStrategy(size=actors, max_tasks_in_flight_per_actor=1),
                fn_constructor_kwargs={"spec": spec, "files": source.files, "formats": source.formats,
                                       "schema": source.schema, "read_types": source.read_types,
                                       "target": sink.target, "done": done_in_whole, "keep": keep,
                                       "predictions": predictions, "threads": threads,
                                       "output": sink.part_spec, "table": getattr(source, "table", None)},
                max_restarts=spec.runtime.ray_max_retries, max_task_retries=spec.runtime.ray_max_retries,
                runtime_env={"env_vars": forwarded_env()})
        failure = _collect(results, totals, stages, on_rows, spec.runtime.ray_max_retries)
    if failure is not None:
        raise failure
    return {**totals, "timings": stages.to_dict()}


@contextmanager
def _job_settings(context):
    """Ray Data settings for this job, restored afterwards (a notebook's own datasets keep theirs)."""
    saved = (context.max_errored_blocks, context.actor_task_retry_on_errors, context.enable_progress_bars,
             context.execution_options.preserve_order)
    context.max_errored_blocks = 0  # a failed block fails the job; never dropped silently
    context.actor_task_retry_on_errors = False  # our errors are deterministic: retrying cannot help
    context.enable_progress_bars = False
    context.execution_options.preserve_order = False  # each unit carries its file and batch number
    try:
        yield
    finally:
        (context.max_errored_blocks, context.actor_task_retry_on_errors, context.enable_progress_bars,
         context.execution_options.preserve_order) = saved


def _collect(results, totals: dict, stages: StageTimes, on_rows, retries: int) -> BatchinferError | None:
    """Add up the items' row counts and stage times as they finish; return the first user error (which stops
    the job)."""
    from ray.exceptions import RayError

    before = set(threading.enumerate())
    rows = iter(results.iter_rows())
    try:
        for row in rows:
            if row["error"]:  # stop at the first user error, as the local executor does
                return _user_error(row)
            totals["rows_this_run"] += int(row["rows_this_run"])
            totals["rows_in"] += int(row["rows_in"])
            stages.add_counts(row)
            if on_rows is not None:
                on_rows(int(row["rows_in"]))
    except RayError as exc:
        raise ClusterError(f"the Ray job failed after {retries} retries: {_first_line(exc)}",
                           hint="units written before the failure are kept; rerun with output.mode = 'resume' "
                                "(or --set output.mode=resume) to finish") from None
    finally:
        rows.close()
        _stop_executors(set(threading.enumerate()) - before)
    return None


def _stop_executors(threads, timeout: float = 60.0) -> None:
    """Stop the Ray Data executors this job started before the driver lets go of Ray. An iterator left early (a
    user error) leaves its executor thread running until garbage collection, and a thread that touches Ray after
    `ray.shutdown()` ends the process with exit 1 before our error is reported."""
    from ray.data._internal.execution.streaming_executor import StreamingExecutor

    for thread in threads:
        if isinstance(thread, StreamingExecutor) and thread.is_alive():
            thread.shutdown(force=True)
            thread.join(timeout)


def _user_error(row: dict) -> BatchinferError:
    from batchinfer import errors

    cls = getattr(errors, str(row["error_type"]), BatchinferError)
    return cls(str(row["error"]), hint=str(row["hint"]) or None)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return next((line for line in text if "Error" in line), text[0] if text else type(exc).__name__)[:300]
