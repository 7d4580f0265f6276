"""Retries for object stores: transient errors (connection resets, 5xx, throttling) are retried with
exponential backoff; permanent ones (no such bucket, access denied) fail at once with a clear message."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("batchinfer")

_TRANSIENT_MARKERS = ("slowdown", "slow down", "throttl", "serverbusy", "server busy",
                      "internalerror", "serviceunavailable", "reset by peer", "connection reset", "timed out",
                      "timeout", "temporarily", "connection aborted", "broken pipe", "remotedisconnected",
                      "server disconnected", "connection refused", "cannot connect", "could not connect")
# status codes as words: a port or an address that holds the digits (127.0.0.1:55003) is not one
_TRANSIENT_STATUS = re.compile(r"(?<![\w.])50[0234](?![\w.])")
_STATUS_403 = re.compile(r"(?<![\w.])403(?![\w.])")
_PERMANENT_MARKERS = ("accessdenied", "access denied", "authorizationfailure", "authenticationfailed",
                      "failed to authenticate", "invalidaccesskeyid", "signaturedoesnotmatch", "forbidden")


def is_permission_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, PermissionError) or any(m in text for m in _PERMANENT_MARKERS) or \
        bool(_STATUS_403.search(text))


_STORAGE_MODULES = ("azure", "botocore", "aiobotocore", "s3fs", "gcsfs", "google", "aiohttp", "adlfs")


_CONNECTION_MARKERS = ("endpointconnectionerror", "connecttimeout", "servicerequesterror", "clientconnectorerror",
                       "cannot connect", "could not connect", "connection refused", "name or service not known",
                       "temporary failure in name resolution", "nodename nor servname")
_MISSING_BUCKET_MARKERS = ("nosuchbucket", "bucket does not exist", "containernotfound", "container does not exist",
                           "no such container")


def is_connection_error(exc: BaseException) -> bool:
    """The store's endpoint could not be reached (refused, unresolvable, timed out), as opposed to an answer."""
    text = f"{type(exc).__name__} {exc}".lower()
    return isinstance(exc, (ConnectionError, TimeoutError)) or any(m in text for m in _CONNECTION_MARKERS)


def is_missing_bucket(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(m in text for m in _MISSING_BUCKET_MARKERS)


def is_storage_error(exc: BaseException) -> bool:
    """An error raised by an object store client (not one of ours, not a bug in our code)."""
    return type(exc).__module__.split(".")[0] in _STORAGE_MODULES


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError)):
        return False
    if is_permission_error(exc):
        return False
    if is_connection_error(exc):
        return True
    text = f"{type(exc).__name__} {exc}".lower()
    return any(m in text for m in _TRANSIENT_MARKERS) or bool(_TRANSIENT_STATUS.search(text))


def retrying(call: Callable[[], T], *, what: str, attempts: int = 5, base_delay: float = 0.2) -> T:
    """Run `call`, retrying transient errors up to `attempts` times with jittered exponential backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            delay = base_delay * 2 ** (attempt - 1) * (0.5 + random.random())
            log.warning("%s: transient error (%s: %s); retry %d of %d in %.1f s", what, type(exc).__name__,
                        str(exc).splitlines()[0][:200] if str(exc) else "", attempt, attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")
