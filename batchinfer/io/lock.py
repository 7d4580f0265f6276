"""One writer per output: a lock file created exclusively, with stale-lock detection and safe takeover.

The lock records host, pid, process start time and a heartbeat. It is stale when its process is gone (same
host) or its heartbeat is older than `STALE_AFTER` seconds (another host). A stale lock is renamed away
before a new one is created exclusively, so of two runs taking over at once only one wins.
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

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"output {self.label} is not writable: {exc}") from None
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
            aside = self.path.with_name(f"{self.path.name}.stale-{uuid.uuid4().hex[:8]}")
            try:
                os.replace(self.path, aside)  # only one of several racing runs moves this lock
                os.unlink(aside)
            except FileNotFoundError:
                pass
        raise LockedError(f"output {self.label}: could not take the lock after several tries")

    def _start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(HEARTBEAT):
                try:
                    tmp = self.path.with_name(f".{self.path.name}.{self.owner['token']}")
                    tmp.write_text(json.dumps({**self.owner, "heartbeat": time.time()}))
                    if (self._holder() or {}).get("token") == self.owner["token"]:
                        os.replace(tmp, self.path)
                    else:
                        tmp.unlink()
                except OSError:
                    pass

        self._thread = threading.Thread(target=beat, name="batchinfer-lock", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if (self._holder() or {}).get("token") == self.owner["token"]:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
