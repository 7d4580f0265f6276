"""Object storage through fsspec against real servers on loopback: S3 (moto server, s3fs) and Azure Blob
(Azurite, adlfs). Read, glob, write, resume after a kill, permanent errors, retries, the lock."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from batchinfer.cli import main
from batchinfer.errors import InputError, JobFileError, LockedError
from batchinfer.io.retry import retrying
from tests.storage_servers import AZURITE_ACCOUNT, AZURITE_KEY
from tests.test_cli import make_frame

EXE = str(Path(sys.executable).parent / "batchinfer")


class Store:
    def __init__(self, kind: str, endpoint: str, monkeypatch) -> None:
        self.kind = kind
        name = f"bi-{uuid.uuid4().hex[:10]}"
        if kind == "s3":
            import boto3
            import s3fs

            monkeypatch.setenv("BI_TEST_S3_KEY", "testing-key")
            monkeypatch.setenv("BI_TEST_S3_SECRET", "testing-secret-value")
            boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="k", aws_secret_access_key="s",
                         region_name="us-east-1").create_bucket(Bucket=name)
            self.options_toml = ('{ key = "${BI_TEST_S3_KEY}", secret = "${BI_TEST_S3_SECRET}", client_kwargs = '
                                 f'{{ endpoint_url = "{endpoint}", region_name = "us-east-1" }} }}')
            self.fs = s3fs.S3FileSystem(key="k", secret="s", client_kwargs={"endpoint_url": endpoint,
                                                                           "region_name": "us-east-1"})
        else:
            import adlfs

            conn = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                    f"BlobEndpoint={endpoint};")
            monkeypatch.setenv("BI_TEST_AZ_CONN", conn)
            self.options_toml = '{ connection_string = "${BI_TEST_AZ_CONN}" }'
            self.fs = adlfs.AzureBlobFileSystem(connection_string=conn)
            self.fs.mkdir(name)
        self.bucket = name
        self.prefix = f"{kind}://{name}"

    def upload(self, local: Path, key: str) -> None:
        self.fs.put_file(str(local), f"{self.bucket}/{key}")

    def download(self, key: str, local: Path) -> Path:
        self.fs.invalidate_cache()
        local.mkdir(parents=True, exist_ok=True)
        for path in self.fs.find(f"{self.bucket}/{key}"):
            rel = path[len(f"{self.bucket}/{key}/"):]
            (local / rel).parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(path, str(local / rel))
        return local


@pytest.fixture(params=["s3", "az"])
def store(request, monkeypatch):
    server = request.getfixturevalue("s3_server" if request.param == "s3" else "azurite_server")
    return Store(request.param, server, monkeypatch)


def write_job(tmp_path: Path, store: Store, model: Path, *, inputs: list[str], output: str = "out",
              mode: str = "error") -> Path:
    paths = ", ".join(json.dumps(f"{store.prefix}/{p}") for p in inputs)
    path = tmp_path / "job.toml"
    path.write_text(f"""
[input]
path = [{paths}]
column = "text"
batch_rows = 100
storage_options = {store.options_toml}

[model]
name = {json.dumps(str(model))}
task = "text-classification"

[output]
path = "{store.prefix}/{output}"
mode = "{mode}"
storage_options = {store.options_toml}
""")
    return path


@pytest.fixture
def inputs(tmp_path, store):
    data = tmp_path / "data"
    data.mkdir()
    make_frame(250, seed=1).write_parquet(data / "a.parquet", row_group_size=100)
    make_frame(250, seed=2, start=250).write_parquet(data / "b.parquet")
    make_frame(120, seed=3, start=500).write_csv(data / "c.csv")
    for name in ("a.parquet", "b.parquet", "c.csv"):
        store.upload(data / name, f"in/{name}")
    store.upload(data / "a.parquet", "other/ignored.parquet")
    return data


def local_reference(tmp_path: Path, data: Path, model: Path) -> pl.DataFrame:
    job = tmp_path / "local.toml"
    job.write_text(f"""
[input]
path = ["{data}/*.parquet", "{data}/c.csv"]
column = "text"
batch_rows = 100
[model]
name = {json.dumps(str(model))}
task = "text-classification"
[output]
path = "{tmp_path / 'local_out'}"
""")
    assert CliRunner().invoke(main, ["run", str(job)]).exit_code == 0
    return pl.read_parquet(str(tmp_path / "local_out" / "*.parquet"))


def test_read_glob_and_write(tmp_path, store, inputs, tiny_classifier):
    job = write_job(tmp_path, store, tiny_classifier, inputs=["in/*.parquet", "in/c.csv"])
    result = CliRunner().invoke(main, ["run", str(job)])
    assert result.exit_code == 0, result.output
    assert "620 rows" in result.output and f"{store.prefix}/out" in result.output
    out = store.download("out", tmp_path / "downloaded")
    assert (out / "_SUCCESS").is_file()
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]  # object stores get no temporary names
    got = pl.read_parquet(str(out / "*.parquet"))
    assert got.equals(local_reference(tmp_path, inputs, tiny_classifier))
    assert len(list((out / "_batchinfer" / "done").iterdir())) == len(list(out.glob("part-*.parquet"))) == 8


def test_resume_after_a_kill(tmp_path, store, inputs, tiny_classifier):
    job = write_job(tmp_path, store, tiny_classifier, inputs=["in/*.parquet", "in/c.csv"], mode="resume")
    killed = subprocess.run([EXE, "run", str(job), "-q"], env={**os.environ, "BATCHINFER_FAULT": "after-part:4"},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    result = CliRunner().invoke(main, ["run", str(job)])
    assert result.exit_code == 0, result.output
    assert "resumed: 3 unit(s) were already done" in result.output
    got = pl.read_parquet(str(store.download("out", tmp_path / "downloaded") / "*.parquet"))
    assert got.equals(local_reference(tmp_path, inputs, tiny_classifier))


def test_missing_bucket_fails_fast_naming_the_url(tmp_path, store, tiny_classifier):
    job = write_job(tmp_path, store, tiny_classifier, inputs=["in/*.parquet"])
    job.write_text(job.read_text().replace(store.bucket, "no-such-bucket-for-batchinfer", 1))
    started = time.time()
    result = CliRunner().invoke(main, ["run", str(job)])
    assert result.exit_code == InputError.exit_code, result.output
    assert f"{store.kind}://no-such-bucket-for-batchinfer" in result.output
    assert time.time() - started < 30
    assert "testing-secret-value" not in result.output and AZURITE_KEY not in result.output


def test_access_denied_names_the_url_never_the_key(tmp_path, azurite_server, monkeypatch, tiny_classifier):
    store = Store("az", azurite_server, monkeypatch)
    make_frame(20).write_parquet(tmp_path / "a.parquet")
    store.upload(tmp_path / "a.parquet", "in/a.parquet")
    wrong = "WRONG" + AZURITE_KEY[5:]
    monkeypatch.setenv("BI_TEST_AZ_CONN", os.environ["BI_TEST_AZ_CONN"].replace(AZURITE_KEY, wrong))
    result = CliRunner().invoke(main, ["run", str(write_job(tmp_path, store, tiny_classifier, inputs=["in/*.parquet"]))])
    assert result.exit_code == InputError.exit_code, result.output
    assert "access denied" in result.output and f"az://{store.bucket}/in/*.parquet" in result.output
    assert wrong not in result.output and AZURITE_KEY not in result.output


def test_a_held_lock_on_an_object_store(tmp_path, store, inputs, tiny_classifier):
    store.fs.pipe_file(f"{store.bucket}/out/_batchinfer/lock",
                       json.dumps({"host": "elsewhere", "pid": 7, "heartbeat": time.time()}).encode())
    result = CliRunner().invoke(main, ["run", str(write_job(tmp_path, store, tiny_classifier,
                                                            inputs=["in/*.parquet"], mode="resume"))])
    assert result.exit_code == LockedError.exit_code and "host elsewhere" in result.output


def test_missing_environment_variable_is_named(tmp_path, s3_server, monkeypatch, tiny_classifier):
    store = Store("s3", s3_server, monkeypatch)
    monkeypatch.delenv("BI_TEST_S3_SECRET")
    result = CliRunner().invoke(main, ["run", str(write_job(tmp_path, store, tiny_classifier, inputs=["in/x"]))])
    assert result.exit_code == JobFileError.exit_code
    assert "input.storage_options.secret: environment variable BI_TEST_S3_SECRET is not set" in result.output


class FlakyProxy:
    """A TCP proxy on loopback that resets its first `resets` connections, then forwards the rest."""

    def __init__(self, target_port: int, resets: int) -> None:
        self.target_port, self.left = target_port, resets
        self.reset_count = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.left > 0:
                self.left -= 1
                self.reset_count += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()  # RST: "connection reset by peer"
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def test_connection_resets_are_retried(tmp_path, s3_server, monkeypatch, tiny_classifier):
    store = Store("s3", s3_server, monkeypatch)
    make_frame(150).write_parquet(tmp_path / "a.parquet")
    store.upload(tmp_path / "a.parquet", "in/a.parquet")
    proxy = FlakyProxy(int(s3_server.rsplit(":", 1)[1]), resets=3)
    try:
        store.options_toml = store.options_toml.replace(s3_server, f"http://127.0.0.1:{proxy.port}")
        result = CliRunner().invoke(main, ["run", str(write_job(tmp_path, store, tiny_classifier,
                                                                inputs=["in/*.parquet"]))])
    finally:
        proxy.close()
    assert result.exit_code == 0, result.output
    assert proxy.reset_count == 3
    assert pl.read_parquet(str(store.download("out", tmp_path / "dl") / "*.parquet")).height == 150


def test_retrying_backs_off_on_transient_errors_only():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("connection reset by peer")
        return "ok"

    assert retrying(flaky, what="test", base_delay=0.001) == "ok" and len(calls) == 3
    calls.clear()

    def denied():
        calls.append(1)
        raise PermissionError("AccessDenied")

    with pytest.raises(PermissionError):
        retrying(denied, what="test", base_delay=0.001)
    assert len(calls) == 1
