"""Opening storage and explaining its failures.

`open_fs` opens an fsspec filesystem with bounded connection attempts: an unreachable endpoint fails in
seconds, not minutes (the stores' own defaults retry for up to 7 minutes under our retries in retry.py).
The user's storage_options win over these defaults. `storage_errors` is the one translation of storage
failures into errors a user can act on: it names the URL and the endpoint, never the credentials.
`check_bucket` asks why a path was found nowhere: object stores list a missing bucket as an empty one.
"""

from __future__ import annotations

import errno
import re
from contextlib import contextmanager
from typing import Any

import fsspec

from batchinfer.errors import BatchinferError
from batchinfer.io.retry import is_connection_error, is_missing_bucket, is_permission_error, is_storage_error

CONNECT_TIMEOUT = 10  # seconds to open a connection
CLIENT_RETRIES = 1  # the client's own retries of one request, a second or two later; retry.py retries calls too
_S3 = ("s3", "s3a")
_AZURE = ("az", "abfs", "abfss")
_BUCKETS = (*_S3, *_AZURE, "gs", "gcs")  # stores whose paths start with a bucket or container


def open_fs(url: str, storage_options: dict[str, Any]) -> tuple[fsspec.AbstractFileSystem, str]:
    """`fsspec.core.url_to_fs` with bounded connection settings by default.

    s3: botocore `config_kwargs` (connect_timeout, retries); the user's keys replace ours one by one.
    az: adlfs `connection_timeout`, also set on its client's transport (adlfs passes it to reads and writes
    only); adlfs passes no retry settings on, so its client's retry policy is bounded here.
    """
    protocol = url.split("://", 1)[0].lower() if "://" in url else "file"
    options = dict(storage_options)
    if protocol in _S3:
        options["config_kwargs"] = {"connect_timeout": CONNECT_TIMEOUT, "retries": {
            "max_attempts": 1 + CLIENT_RETRIES, "mode": "standard"}, **options.get("config_kwargs", {})}
    if protocol in _AZURE:
        options.setdefault("connection_timeout", CONNECT_TIMEOUT)
    fs, root = fsspec.core.url_to_fs(url, **options)
    if protocol in _AZURE:
        _bound_azure_client(fs, options["connection_timeout"])
    return fs, root


def _bound_azure_client(fs, timeout: float) -> None:
    """Set the retry policy (default: 3 retries 15 to 40 s apart) and the connect timeout of every request."""
    config = getattr(getattr(fs, "service_client", None), "_config", None)
    policy = getattr(config, "retry_policy", None)
    if policy is not None and hasattr(policy, "total_retries"):
        policy.total_retries = policy.connect_retries = policy.read_retries = policy.status_retries = CLIENT_RETRIES
        policy.initial_backoff, policy.increment_base, policy.random_jitter_range = 1, 1, 0.5
    connection = getattr(getattr(config, "transport", None), "connection_config", None)
    if connection is not None:
        connection.timeout = timeout


def endpoint_of(fs) -> str | None:
    """The endpoint URL a filesystem talks to, if it says (without a query: no SAS token)."""
    url = (getattr(getattr(fs, "service_client", None), "primary_endpoint", None) or getattr(fs, "endpoint_url", None)
           or (getattr(fs, "client_kwargs", None) or {}).get("endpoint_url"))
    return url.split("?", 1)[0] if isinstance(url, str) else None


def storage_error(exc: BaseException, what: str, error: type[BatchinferError], *, doing: str | None = None,
                  fs=None) -> BatchinferError | None:
    """`exc` as an `error` for `what` ("input s3://b/in", "output az://c/out"), or None if no storage failure.

    `doing`: what was being done ("writing part-00000-000000"); `fs`: the filesystem, to name its endpoint.
    """
    cause = exc
    while not (isinstance(cause, OSError) or is_storage_error(cause) or is_permission_error(cause)):
        cause = cause.__cause__  # adlfs wraps client errors: RuntimeError("Failed to upload block: ...")
        if cause is None:
            return None
    side = what.split(" ", 1)[0]  # "input" or "output"
    line = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    during = f" while {doing}" if doing else ""
    if is_permission_error(cause):
        return error(f"{what}: access denied{during}", hint="check the credentials and permissions for this "
                                                              "location (storage_options or the environment)")
    if is_missing_bucket(cause):
        return _no_bucket(what, error)
    resume = ("; committed parts are kept and output.mode = 'resume' continues from them"
              if side == "output" and doing not in (None, "checking", "reading") else "")
    if is_connection_error(cause):
        endpoint = endpoint_of(fs) if fs is not None else None
        return error(f"{what}: the storage endpoint {endpoint + ' ' if endpoint else ''}cannot be reached{during} "
                     f"({line})",
                     hint="check the endpoint (storage_options: endpoint_url, account_name or connection_string) "
                          f"and the network; connection attempts were retried{resume}")
    if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
        return error(f"{what}: no space left on the device{during}", hint=f"free space there{resume}")
    return error(f"{what}: {doing + ' ' if doing else ''}failed: {type(cause).__name__}: {line}",
                 hint=f"check the location and its permissions{resume}")


def check_bucket(fs, path: str, what: str, error: type[BatchinferError]) -> None:
    """Raise `error` for `what` if `path` is on an object store whose bucket or container does not exist.

    For a path found nowhere: the stores answer "no such file" (or list nothing) under a missing bucket too.
    """
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    bucket = fs._strip_protocol(path).split("/", 1)[0]
    if not bucket or not set(protocols) & set(_BUCKETS):
        return
    try:
        fs.info(bucket)
    except FileNotFoundError:
        raise _no_bucket(what, error) from None
    except Exception:  # denied, unreachable: no answer about the bucket; the caller's own error stands
        return


def _no_bucket(what: str, error: type[BatchinferError]) -> BatchinferError:
    side = what.split(" ", 1)[0]  # "input" or "output"
    bucket = re.search(r"://([^/@\s]+)", what)
    return error(f"{what}: the bucket or container {bucket[1]!r} does not exist" if bucket
                 else f"{what}: the bucket or container does not exist",
                 hint=f"create it (batchinfer never creates one), or fix {side}.path")


@contextmanager
def storage_errors(what: str, error: type[BatchinferError], *, doing: str | None = None, fs=None):
    """Storage failures in the block raised as `error`s (see `storage_error`); our own errors pass unchanged."""
    try:
        yield
    except BatchinferError:
        raise
    except Exception as exc:
        translated = storage_error(exc, what, error, doing=doing, fs=fs)
        if translated is None:
            raise
        raise translated from None
