"""Output and storage checks that come before the model loads: a missing bucket or container (never created),
a read-only output folder, compression settings, an unreachable endpoint (bounded, with a hint that fits)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchinfer.cli import main
from batchinfer.errors import InputError, JobFileError, OutputError
from batchinfer.io.sink import ParquetSink
from batchinfer.io.storage import open_fs, storage_errors
from batchinfer.job import OutputSpec
from tests.storage_servers import AZURITE_ACCOUNT, AZURITE_KEY, free_port
from tests.test_cli import job, make_frame
from tests.test_storage import EXE, store, write_job  # noqa: F401 (store is a fixture)

# Loading this model fails with exit 5: a run that exits 3, 4 or 6 shows that the failing check came first.
NO_MODEL = Path("/nonexistent/batchinfer-test-model")


def run_cli(path: Path):
    started = time.monotonic()
    result = CliRunner().invoke(main, ["run", str(path)])
    return result, time.monotonic() - started


def test_a_missing_bucket_or_container_is_never_created(tmp_path, store, tiny_classifier):
    make_frame(20).write_parquet(tmp_path / "a.parquet")
    store.upload(tmp_path / "a.parquet", "in/a.parquet")
    missing = f"bi-missing-{uuid.uuid4().hex[:8]}"
    path = write_job(tmp_path, store, tiny_classifier, inputs=["in/a.parquet"])
    path.write_text(path.read_text().replace(f'"{store.prefix}/out"', f'"{store.kind}://{missing}/out"'))
    result, _ = run_cli(path)
    assert result.exit_code == OutputError.exit_code, result.output
    assert f"output {store.kind}://{missing}/out: the bucket or container '{missing}' does not exist" in result.output
    assert "create it" in result.output
    store.fs.invalidate_cache()
    assert not store.fs.exists(missing)


@pytest.mark.parametrize("inputs", ["in/a.parquet", "in/*.parquet", "in"])
def test_an_input_in_a_missing_bucket_or_container_says_so(tmp_path, store, tiny_classifier, inputs):
    """The stores answer "no such file" under a missing bucket: the input says which bucket is missing, as the
    output does (one translator)."""
    missing = f"bi-missing-{uuid.uuid4().hex[:8]}"
    path = write_job(tmp_path, store, tiny_classifier, inputs=[inputs])
    path.write_text(path.read_text().replace(f'"{store.prefix}/{inputs}"', f'"{store.kind}://{missing}/{inputs}"'))
    result, _ = run_cli(path)
    assert result.exit_code == InputError.exit_code, result.output
    assert f"input {store.kind}://{missing}/{inputs}: the bucket or container '{missing}' does not exist" \
        in result.output
    assert "create it" in result.output and "input.path" in result.output
    store.fs.invalidate_cache()
    assert not store.fs.exists(missing)


def test_opening_a_sink_never_creates_a_bucket(store):
    """Past the check, too: a bucket deleted between the check and the run is not made again."""
    missing = f"bi-missing-{uuid.uuid4().hex[:8]}"
    options = {"key": "k", "secret": "s", "client_kwargs": store.fs.client_kwargs} if store.kind == "s3" \
        else {"connection_string": os.environ["BI_TEST_AZ_CONN"]}
    sink = ParquetSink(OutputSpec(path=f"{store.kind}://{missing}/out", storage_options=options))
    with pytest.raises(OutputError, match="does not exist"):
        sink.open({"files": []})
    store.fs.invalidate_cache()
    assert not store.fs.exists(missing)


@pytest.mark.parametrize("codec, level, allowed", [
    ("zstd", 99, "-131072 to 22"), ("gzip", 10, "1 to 9"), ("brotli", -1, "0 to 11"),
    ("snappy", 3, "snappy takes no level")])
def test_compression_settings_are_checked_before_the_model_loads(tmp_path, codec, level, allowed):
    make_frame(20).write_parquet(tmp_path / "a.parquet")
    path = job(tmp_path, NO_MODEL, input_path="a.parquet",
               extra=f'compression = "{codec}"\ncompression_level = {level}')
    result, _ = run_cli(path)
    assert result.exit_code == JobFileError.exit_code, result.output
    assert "output.compression_level" in result.output and allowed in result.output
    assert not (tmp_path / "out").exists()


def test_a_valid_compression_level_passes(tmp_path, tiny_classifier):
    make_frame(20).write_parquet(tmp_path / "a.parquet")
    path = job(tmp_path, tiny_classifier, input_path="a.parquet", extra='compression = "gzip"\ncompression_level = 9')
    result, _ = run_cli(path)
    assert result.exit_code == 0, result.output


def test_a_read_only_output_fails_before_the_model_loads(tmp_path):
    """A folder we may not write to: permission bits, or for root (who ignores them) a read-only bind mount
    in a private mount namespace (nothing leaks out)."""
    make_frame(20).write_parquet(tmp_path / "a.parquet")
    locked = tmp_path / "locked"
    (locked / "out").mkdir(parents=True)
    path = job(tmp_path, NO_MODEL, input_path="a.parquet", output=str(locked / "out"))
    if os.geteuid() != 0:
        locked.chmod(0o555)
        (locked / "out").chmod(0o555)
        try:
            proc = subprocess.run([EXE, "run", str(path), "-q"], capture_output=True, text=True, timeout=120)
        finally:
            locked.chmod(0o755)
            (locked / "out").chmod(0o755)
    else:
        script = f"mount --bind {locked} {locked} && mount -o remount,bind,ro {locked} && exec {EXE} run {path} -q"
        proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == OutputError.exit_code, proc.stderr
    assert f"{locked / 'out'} is not writable" in proc.stderr


def unreachable_options(kind: str, port: int, monkeypatch) -> str:
    """storage_options (TOML) for a store at 127.0.0.1:port, where nothing listens."""
    if kind == "az":
        monkeypatch.setenv("BI_TEST_AZ_CONN", f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
                                              f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/"
                                              f"{AZURITE_ACCOUNT};")
        return '{ connection_string = "${BI_TEST_AZ_CONN}" }'
    monkeypatch.setenv("BI_TEST_S3_SECRET", "testing-secret-value")
    return ('{ key = "k", secret = "${BI_TEST_S3_SECRET}", client_kwargs = '
            f'{{ endpoint_url = "http://127.0.0.1:{port}", region_name = "us-east-1" }} }}')


@pytest.mark.parametrize("kind", ["az", "s3"])
@pytest.mark.parametrize("side", ["input", "output"])
def test_an_unreachable_endpoint_fails_fast_and_says_so(tmp_path, monkeypatch, kind, side):
    port = free_port()  # free: nothing listens there
    make_frame(20).write_parquet(tmp_path / "a.parquet")
    remote = f"{kind}://bucket/" + ("in/a.parquet" if side == "input" else "out")
    options = unreachable_options(kind, port, monkeypatch)
    path = tmp_path / "job.toml"
    path.write_text(f"""
[input]
path = {json.dumps(remote if side == "input" else str(tmp_path / "a.parquet"))}
column = "text"
{"storage_options = " + options if side == "input" else ""}
[model]
name = "{NO_MODEL}"
task = "text-classification"
[output]
path = {json.dumps(remote if side == "output" else str(tmp_path / "out"))}
{"storage_options = " + options if side == "output" else ""}
""")
    result, took = run_cli(path)
    assert result.exit_code == (InputError if side == "input" else OutputError).exit_code, result.output
    assert took < 45, f"took {took:.0f} s"
    assert f"{side} {remote}" in result.output and f"127.0.0.1:{port}" in result.output
    assert "cannot be reached" in result.output and "network" in result.output
    assert "free space" not in result.output
    assert AZURITE_KEY not in result.output and "testing-secret-value" not in result.output


@pytest.mark.parametrize("exc, message, hint", [
    (OSError(errno.ENOSPC, "No space left on device"), "no space left on the device while writing part-1",
     "free space"),
    (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), "cannot be reached while writing part-1",
     "the network"),
    (OSError(errno.EIO, "Input/output error"), "writing part-1 failed: OSError: [Errno 5] Input/output error",
     "check the location"),
    (PermissionError("AccessDenied"), "access denied while writing part-1", "credentials"),
    (RuntimeError("Failed to upload block"), None, None),  # no storage failure: a bug, passed on as it is
])
def test_output_errors_get_a_hint_that_fits_the_cause(exc, message, hint):
    with pytest.raises(OutputError if message else RuntimeError) as info:
        with storage_errors("output s3://b/out", OutputError, doing="writing part-1"):
            raise exc
    if message:
        assert message in info.value.message and hint in info.value.hint
        assert ("free space" in info.value.hint) == (hint == "free space")


def test_a_wrapped_client_error_is_explained_by_its_cause():
    """adlfs raises RuntimeError("Failed to upload block: ...") from the client's error."""
    with pytest.raises(OutputError, match="the bucket or container 'b' does not exist"):
        with storage_errors("output az://b/out", OutputError, doing="preparing"):
            raise RuntimeError("Failed to upload block") from FileNotFoundError("The specified container does not "
                                                                                "exist")


def test_bounded_client_settings_give_way_to_the_users():
    assert open_fs("s3://b/x", {"key": "k", "secret": "s"})[0].config_kwargs == {
        "connect_timeout": 10, "retries": {"max_attempts": 2, "mode": "standard"}}
    fs, _ = open_fs("s3://b/x", {"key": "k", "secret": "s", "config_kwargs": {"retries": {"max_attempts": 9}}})
    assert fs.config_kwargs == {"connect_timeout": 10, "retries": {"max_attempts": 9}}
    conn = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://127.0.0.1:1/{AZURITE_ACCOUNT};")
    config = open_fs("az://c/x", {"connection_string": conn, "connection_timeout": 3})[0].service_client._config
    assert config.retry_policy.total_retries == 1 and config.retry_policy.initial_backoff == 1
    assert config.transport.connection_config.timeout == 3


@pytest.mark.parametrize("message,permission,transient", [
    ("Cannot connect to host 127.0.0.1:53403 ssl:default [Connect call failed]", False, True),  # a port, not a 403
    ("http://127.0.0.1:55003/bucket: server disconnected", False, True),
    ("An error occurred (403) when calling the GetObject operation: Forbidden", True, False),
    ("Server failed to authenticate the request. ErrorCode:AuthenticationFailed", True, False),
    ("An error occurred (503) when calling the PutObject operation: Slow Down", False, True),
    ("HTTP 500 internal error", False, True),
    ("row 5003 of the file is bad", False, False),
])
def test_status_codes_are_read_as_words_not_digits_in_a_port(message, permission, transient):
    from batchinfer.io.retry import is_permission_error, is_transient

    assert is_permission_error(OSError(message)) is permission
    assert is_transient(OSError(message)) is transient
