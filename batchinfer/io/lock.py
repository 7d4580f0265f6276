"""One writer per output: a lock file created exclusively, with stale-lock detection and safe takeover.

The lock records host, pid, process start time and a heartbeat. It is stale when its process is gone (same
host) or its heartbeat is older than `STALE_AFTER` seconds (another host). Locally a stale lock is renamed
away before a new one is created exclusively, so of two runs taking over at once only one wins. On object
stores the lock is created with a conditional write (`If-None-Match`, fsspec mode "xb"); a stale one is
deleted only if it still holds the token that was judged stale.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from batchinfer.errors import LockedError, OutputError

STALE_AFTER = 600.0
HEARTBEAT = 30.0


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    now = _start_time(pid)
    return start is None or now is None or now == start  # a reused pid has another start time


class OutputLock:
    """Local lock file (os-level exclusive create and atomic rename)."""

    def __init__(self, path: Path, *, label: str) -> None:
        self.path = Path(path)
        self.label = label
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid()),
                      "token": uuid.uuid4().hex}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write_new(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            json.dump({**self.owner, "heartbeat": time.time()}, fh)
        return True

    def _holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # being written right now, or garbage: judged by its age

    def _is_stale(self, holder: dict) -> bool:
        if holder.get("host") == self.owner["host"] and isinstance(holder.get("pid"), int):
            return not _alive(holder["pid"], holder.get("start"))
        beat = holder.get("heartbeat")
        if not isinstance(beat, (int, float)):
            try:
                beat = self.path.stat().st_mtime
            except FileNotFoundError:
                return True
        return time.time() - beat > STALE_AFTER

    def _prepare(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"output {self.label} is not writable: {exc}") from None

    def _take_over(self, holder: dict) -> None:
        """Remove a stale lock: renamed aside first, so of several racing runs only one removes it."""
        aside = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(self.path, aside)
            os.unlink(aside)
        except FileNotFoundError:
            pass

    def _write_heartbeat(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{self.owner['token']}")
        tmp.write_text(json.dumps({**self.owner, "heartbeat": time.time()}))
        os.replace(tmp, self.path)

    def _remove(self) -> None:
        self.path.unlink()

    def acquire(self) -> None:
        self._prepare()
        for _ in range(5):
            if self._write_new():
                self._start_heartbeat()
                return
            holder = self._holder()
            if holder is None:
                continue  # released meanwhile: try again
            if not self._is_stale(holder):
                raise LockedError(
                    f"output {self.label} is being written by another run "
                    f"(host {holder.get('host', '?')}, pid {holder.get('pid', '?')})",
                    hint="wait for it to finish; a lock left by a killed run is taken over automatically")
            self._take_over(holder)
        raise LockedError(f"output {self.label}: could not take the lock after several tries")

    def _mine(self) -> bool:
        return (self._holder() or {}).get("token") == self.owner["token"]

    def _start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(HEARTBEAT):
                try:
                    if self._mine():
                        self._write_heartbeat()
                except OSError:
                    pass

        self._thread = threading.Thread(target=beat, name="batchinfer-lock", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._mine():
            try:
                self._remove()
            except FileNotFoundError:
                pass


class ObjectStoreLock(OutputLock):
    """The same protocol on an fsspec filesystem without rename: conditional create, token-checked delete."""

    def __init__(self, fs, path: str, *, label: str) -> None:
        super().__init__(Path(path), label=label)
        self.fs, self.url = fs, path

    def _write_new(self) -> bool:
        try:
            with self.fs.open(self.url, "xb") as fh:
                fh.write(json.dumps({**self.owner, "heartbeat": time.time()}).encode())
        except FileExistsError:
            return False
        return True

    def _holder(self) -> dict | None:
        try:
            self.fs.invalidate_cache(self.url)
            return json.loads(self.fs.cat_file(self.url))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def _is_stale(self, holder: dict) -> bool:
        beat = holder.get("heartbeat")
        if holder.get("host") == self.owner["host"] and isinstance(holder.get("pid"), int):
            return not _alive(holder["pid"], holder.get("start"))
        return not isinstance(beat, (int, float)) or time.time() - beat > STALE_AFTER

    def _prepare(self) -> None:
        pass  # object stores have no folders to make

    def _take_over(self, holder: dict) -> None:
        """Delete the stale lock only if it still holds the token that was judged stale."""
        if (self._holder() or {}).get("token") == holder.get("token"):
            try:
                self.fs.rm_file(self.url)
            except FileNotFoundError:
                pass

    def _write_heartbeat(self) -> None:
        self.fs.pipe_file(self.url, json.dumps({**self.owner, "heartbeat": time.time()}).encode())

    def _remove(self) -> None:
        self.fs.rm_file(self.url)
