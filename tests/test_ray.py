"""The Ray executor: the same job file on Ray Data gives the local executor's output, exactly once.

A private Ray instance (loopback only) is started once for this module; one test starts its own through the
CLI as a user without a cluster would. Worker kills use the fault points of the crash tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl
import pytest

from tests.test_cli import make_frame
from tests.test_resume import assert_same_output, read, write_resume_job

pytest.importorskip("ray", reason="the Ray executor's tests need ray[data]: pip install -e '.[test]'")

EXE = str(Path(sys.executable).parent / "batchinfer")
RAY = str(Path(sys.executable).parent / "ray")


@pytest.fixture
def short_tmp():
    """Ray's socket paths must stay under 108 bytes: pytest's own temporary folders are too deep."""
    path = Path(tempfile.mkdtemp(prefix="bi-ray-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster():
    """A Ray head on 127.0.0.1 with 2 CPUs, its files under a temporary folder; stopped after the module."""
    home = Path(tempfile.mkdtemp(prefix="bi-ray-", dir="/tmp"))
    env = {**os.environ, "HOME": str(home), "RAY_TMPDIR": str(home / "tmp"), "RAY_USAGE_STATS_ENABLED": "0"}
    port = _free_port()
    subprocess.run([RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
                    "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={home / 'tmp'}"],
                   env=env, check=True, capture_output=True, timeout=180)
    try:
        yield {"address": f"127.0.0.1:{port}", "env": env}
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_classifier):
    """Two Parquet files (one of several row groups), an empty one and a CSV: 9 units, and the local output."""
    root = tmp_path_factory.mktemp("ray")
    (root / "data").mkdir()
    make_frame(250, seed=1).write_parquet(root / "data" / "a.parquet", row_group_size=70)
    make_frame(250, seed=2, start=250).write_parquet(root / "data" / "b.parquet")
    make_frame(10, seed=4).head(0).write_parquet(root / "data" / "empty.parquet")
    make_frame(180, seed=3, start=500).write_csv(root / "data" / "c.csv")
    write_resume_job(root, tiny_classifier)
    _run(root, root / "clean", executor="local")
    return root


def _run(root: Path, out: Path, *, executor: str = "ray", env: dict | None = None, extra: tuple = (),
         expect: int = 0, address: str | None = None) -> subprocess.CompletedProcess:
    args = [EXE, "run", str(root / "job.toml"), "--set", f"output.path={out}", "--executor", executor,
            "--summary-json", str(out.parent / f"{out.name}.summary.json"), *extra]
    if address:
        args += ["--ray-address", address]
    proc = subprocess.run(args, env=env or os.environ, capture_output=True, text=True, timeout=420)
    assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc


def test_a_private_instance_gives_the_local_output(workdir, tmp_path, short_tmp):
    """No cluster given: batchinfer starts Ray on loopback for the run, and stops it."""
    env = {**os.environ, "HOME": str(short_tmp), "RAY_TMPDIR": str(short_tmp / "tmp"), "RAY_USAGE_STATS_ENABLED": "0"}
    out = tmp_path / "out"
    proc = _run(workdir, out, env=env, extra=("--set", "output.mode=error"))
    assert_same_output(out, workdir / "clean")
    summary = json.loads((tmp_path / "out.summary.json").read_text())
    assert summary["rows_out"] == summary["rows_this_run"] == 680
    assert "680 rows" in proc.stdout


def test_on_a_cluster_and_resumed_across_executors(workdir, cluster, tmp_path):
    """A cluster address; then a local run resumes a Ray output that lost units (same part names)."""
    out = tmp_path / "out"
    proc = _run(workdir, out, env=cluster["env"], address=cluster["address"], extra=("-v",))
    assert_same_output(out, workdir / "clean")
    timings = json.loads((tmp_path / "out.summary.json").read_text())["timings"]  # the actors' stages, added up
    assert timings["infer_s"] > 0 and timings["read_s"] > 0 and timings["write_s"] > 0
    assert 0 < timings["padding_efficiency"] <= 1 and timings["tokens"] > 0
    assert "busy seconds per stage" in proc.stderr and "padding efficiency" in proc.stderr
    for unit in ("part-00000-000001", "part-00003-000001"):  # a Parquet unit and a CSV unit
        (out / f"{unit}.parquet").unlink()
        (out / "_batchinfer" / "done" / f"{unit}.json").unlink()
    (out / "_SUCCESS").unlink()
    _run(workdir, out, executor="local")
    assert_same_output(out, workdir / "clean")
    summary = json.loads((tmp_path / "out.summary.json").read_text())
    assert summary["rows_this_run"] == 100 + 80 and summary["units_already_done"] == 7


def test_a_worker_killed_once_is_replaced_and_its_unit_redone(workdir, cluster, tmp_path):
    env = {**cluster["env"], "BATCHINFER_FAULT": "after-part:2", "BATCHINFER_FAULT_ONCE": str(tmp_path / "fired")}
    out = tmp_path / "out"
    _run(workdir, out, env=env, address=cluster["address"])
    assert (tmp_path / "fired").exists(), "the fault never fired: the test proves nothing"
    assert_same_output(out, workdir / "clean")


def test_a_worker_that_keeps_dying_fails_the_job_and_resume_finishes_it(workdir, cluster, tmp_path):
    """Retries are capped: a worker that dies on every try ends the job with exit 10, not a loop."""
    out = tmp_path / "out"
    env = {**cluster["env"], "BATCHINFER_FAULT": "infer:2"}
    proc = _run(workdir, out, env=env, address=cluster["address"], expect=10,
                extra=("--set", "runtime.ray_max_retries=1"))
    assert "cluster error" in proc.stderr and "resume" in proc.stderr
    assert not (out / "_SUCCESS").exists()
    committed = len(list((out / "_batchinfer" / "done").iterdir()))
    assert 0 < committed < 9
    _run(workdir, out, env=cluster["env"], address=cluster["address"])
    assert_same_output(out, workdir / "clean")


@pytest.fixture(scope="module")
def bad_rows(tmp_path_factory, tiny_classifier):
    """A CSV with invalid UTF-8 in row 3 and a Parquet file with a null text (null_text = 'error') in row 5."""
    root = tmp_path_factory.mktemp("ray-bad")
    (root / "data").mkdir()
    make_frame(40, seed=5).write_parquet(root / "data" / "a.parquet")  # make_frame's row 5 is null
    lines = make_frame(30, seed=6, start=40).write_csv().encode().splitlines()
    lines[4] = lines[4].replace(b",", b",\xff\xfe", 1)
    (root / "data" / "b.csv").write_bytes(b"\n".join(lines) + b"\n")
    (root / "job.toml").write_text(f"""
[input]
path = ["data/a.parquet", "data/b.csv"]
column = "text"
null_text = "error"
batch_rows = 16
[input.csv]
empty_as_null = false  # the CSV's one bad row is its invalid UTF-8 (its empty text field is text)
[model]
name = {json.dumps(str(tiny_classifier))}
task = "text-classification"
[output]
path = "out"
""")
    return root


@pytest.mark.parametrize("on_error", ["fail", "dead-letter"])
def test_row_errors_follow_on_error_as_locally(bad_rows, cluster, tmp_path, on_error):
    option = ("--set", f"input.on_error={on_error}")
    expect = 9 if on_error == "fail" else 8
    local = _run(bad_rows, tmp_path / "local", executor="local", extra=option, expect=expect)
    ray = _run(bad_rows, tmp_path / "ray", env=cluster["env"], address=cluster["address"], extra=option,
               expect=expect)
    if on_error == "fail":
        assert "row error" in local.stderr and "a.parquet, row 5: text is null" in local.stderr
        # items run side by side: Ray stops at the first bad row it hears of, in either file
        assert "row error" in ray.stderr
        assert "a.parquet, row 5: text is null" in ray.stderr or "b.csv, row 3: text is not valid UTF-8" in ray.stderr
        assert not (tmp_path / "ray" / "_SUCCESS").exists()
        return
    assert read(tmp_path / "ray").equals(read(tmp_path / "local"))
    dead_ray = pl.read_parquet(str(tmp_path / "ray" / "_dead_letter" / "*.parquet"))
    dead_local = pl.read_parquet(str(tmp_path / "local" / "_dead_letter" / "*.parquet"))
    assert dead_ray.equals(dead_local) and dead_ray.height == 2


def test_ray_is_refused_for_a_polars_frame(tiny_classifier, tmp_path):
    import batchinfer
    from batchinfer.errors import JobFileError

    with pytest.raises(JobFileError, match="polars frame"):
        batchinfer.predict(make_frame(10, seed=0).lazy(), "text", task="text-classification",
                           model=str(tiny_classifier), output=str(tmp_path / "out"), executor="ray")
    assert not list((tmp_path / "out").glob("part-*"))


@pytest.mark.parametrize("address", ["ray://127.0.0.1:{port}", "127.0.0.1:{port}"])
def test_an_unreachable_cluster_fails_before_the_model_loads(tmp_path, address):
    import socket

    from tests.test_cli import invoke, job

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    make_frame(20, seed=0).write_parquet(tmp_path / "in.parquet")
    path = job(tmp_path, tmp_path / "no-such-model", input_path="in.parquet")  # loading it would fail (exit 5)
    result = invoke("run", str(path), "--ray-address", address.format(port=port))
    assert result.exit_code == 10, result.output
    assert "cannot be reached" in result.output and f"127.0.0.1:{port}" in result.output
    assert not (tmp_path / "out").exists()


def test_sampled_generation_on_ray_equals_the_local_run(cluster, tmp_path):
    """Per-row seeds: the same job's sampled text is the same on Ray's actors as locally, row for row."""
    from tests.tiny_decoders import build_decoder

    model = build_decoder(tmp_path / "gpt2", "gpt2")
    root = tmp_path / "gen"
    (root / "data").mkdir(parents=True)
    prompts = ["the quick brown", "hello", "name: Ada Lovelace; born:", "ok ok"]
    pl.DataFrame({"row_id": list(range(24)), "text": prompts * 6}).write_parquet(root / "data" / "a.parquet")
    pl.DataFrame({"row_id": list(range(24, 36)), "text": prompts * 3}).write_csv(root / "data" / "b.csv")
    (root / "job.toml").write_text(f"""[input]
path = "data"
column = "text"
batch_rows = 8
[model]
name = {json.dumps(str(model))}
task = "text-generation"
max_new_tokens = 5
do_sample = true
temperature = 1.4
[output]
path = "out"
mode = "resume"
""")
    _run(root, tmp_path / "local", executor="local")
    _run(root, tmp_path / "ray", env=cluster["env"], address=cluster["address"])
    local, on_ray = read(tmp_path / "local"), read(tmp_path / "ray")
    assert on_ray.height == 36 and on_ray.equals(local)
    assert len(set(local["generated_text"].to_list())) > len(prompts)  # sampled per row, not per prompt


def test_jsonl_and_delta_inputs_into_a_delta_table_on_ray(cluster, tiny_classifier, tmp_path):
    """JSON Lines (whole-file work items) and a Delta table's files at one version on Ray, written to a Delta
    table through its staging folder: the rows the local executor writes, committed once."""
    import deltalake

    from tests.test_tables_kill import toml_value

    (tmp_path / "data").mkdir()
    make_frame(120, seed=5).write_ndjson(tmp_path / "data" / "a.jsonl")
    make_frame(70, seed=6, start=500).write_ndjson(tmp_path / "data" / "b.ndjson")
    deltalake.write_deltalake(tmp_path / "events", make_frame(90, seed=7, start=1000).to_arrow(),
                              partition_by=["group"])
    for name, source in (("jsonl", str(tmp_path / "data")), ("delta", str(tmp_path / "events"))):
        root = tmp_path / name
        root.mkdir()
        sections = {"input": {"path": source, "column": "text", "batch_rows": 40},
                    "model": {"name": str(tiny_classifier), "task": "text-classification"},
                    "output": {"path": "out", "format": "delta", "mode": "append"}}
        (root / "job.toml").write_text("\n".join(f"[{s}]\n" + "\n".join(f"{k} = {toml_value(v)}" for k, v in body.items())
                                                 for s, body in sections.items()) + "\n")
        _run(root, root / "local", executor="local")
        _run(root, root / "ray", env=cluster["env"], address=cluster["address"])
        local, ray = (pl.read_delta(str(root / where)).sort("row_id") for where in ("local", "ray"))
        assert ray.height == {"jsonl": 190, "delta": 90}[name] and ray.equals(local.select(ray.columns))
        assert sum("batchinfer.run_id" in h for h in deltalake.DeltaTable(str(root / "ray")).history()) == 1


def test_one_actor_per_gpu_and_a_cluster_without_gpus_is_refused(workdir, cluster, tmp_path):
    """runtime.device = 'cuda' on Ray: one actor per GPU of the cluster, each holding one and seeing it as
    'cuda'; a cluster with no GPU fails at once rather than wait for one; a driver with no GPU (it loads the
    model too) exits 11 with nothing written."""
    from batchinfer.distributed.ray import actor_device, actor_layout, check_gpus
    from batchinfer.errors import DeviceError
    from batchinfer.job import RuntimeSpec

    cuda = RuntimeSpec(device="cuda:1", threads=2)
    assert actor_layout(cuda, 16, items=9, cluster_gpus=4) == (4, 2, 1.8, 1)
    assert actor_layout(cuda, 16, items=3, cluster_gpus=4)[0] == 3  # never more actors than items
    assert actor_layout(RuntimeSpec(device="auto"), 8, items=9, cluster_gpus=2)[::3] == (2, 1)
    assert actor_layout(RuntimeSpec(device="auto"), 8, items=9, cluster_gpus=0)[3] == 0  # CPU actors
    assert actor_layout(RuntimeSpec(), 8, items=9, cluster_gpus=2)[3] == 0  # cpu stays cpu
    assert actor_device(cuda) == "cuda" and actor_device(RuntimeSpec(device="auto")) == "auto"
    check_gpus(cuda, {"CPU": 16.0, "GPU": 4.0}, 1)
    with pytest.raises(DeviceError, match="the Ray cluster has no GPU \\(its resources: CPU 16, memory 1e"):
        check_gpus(cuda, {"CPU": 16.0, "memory": 1e9, "node:127.0.0.1": 1.0}, 1)
    proc = _run(workdir, tmp_path / "out", env=cluster["env"], address=cluster["address"],
                extra=("--device", "cuda"), expect=11)
    assert "this machine has no NVIDIA GPU" in proc.stderr and "Traceback" not in proc.stderr
    assert not any((tmp_path / "out").rglob("*.parquet"))
