"""One writer per output: a lock file published whole and exclusively, with stale-lock detection and safe takeover.

The lock records host, pid, process start time and a heartbeat. It is stale when its process is gone (same
host) or its heartbeat is older than `STALE_AFTER` seconds (another host). Locally a lock is written to a
temporary file and hard-linked into place (which fails if a lock exists), so a lock is never seen half-written:
an empty or garbage lock (a disk that filled up under an older version) is stale at once. A stale lock is
removed only by the run that hard-links it to a name of its own (`.lock.stale-INODE`, which only one run can
create) and finds there the very file it judged stale, so of several runs taking over at once exactly one wins.
On object stores the lock is created with a conditional write (`If-None-Match`, fsspec mode "xb"); a stale
one is deleted only if it still holds the content that was judged stale.
"""

from __future__ import annotations

import errno
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
GRACE = 5.0  # without hard links a lock is created empty, then written: garbage younger than this is in the making
REAPER_STALE = 60.0  # a takeover takes milliseconds: a `.lock.stale-*` link older than this was left by a kill
NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EXDEV, errno.EMLINK}
FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
FIELDS = ("host", "pid", "heartbeat")


def start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    now = start_time(pid)
    return start is None or now is None or now == start  # a reused pid has another start time


def _parse(raw: bytes | None) -> dict:
    try:
        holder = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


class OutputLock:
    """Local lock file (published by hard link, taken over through a hard link only one run can make)."""

    def __init__(self, path: Path, *, label: str) -> None:
        self.path = Path(path)
        self.label = label
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "start": start_time(os.getpid()),
                      "token": uuid.uuid4().hex}
        self._tmp = self.path.with_name(f".{self.path.name}.{self.owner['token']}")
        self._linkless = False  # set on a file system without hard links (some FUSE mounts)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        return json.dumps({**self.owner, "heartbeat": time.time()}).encode()

    def _unwritable(self, exc: OSError) -> OutputError:
        if exc.errno in FULL:
            return OutputError(f"output {self.label}: cannot write its lock: the disk or quota is full ({exc})",
                               hint="free some space (or raise the quota) where the output is written, then rerun")
        return OutputError(f"output {self.label} is not writable: cannot write its lock: {exc}")

    def _write_new(self) -> bool:
        """Create the lock whole, or not at all; False if a lock exists."""
        if self._linkless:
            return self._write_in_place()
        try:
            try:
                self._tmp.write_bytes(self._body())
            except OSError as exc:
                raise self._unwritable(exc) from None
            os.link(self._tmp, self.path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in NO_LINKS:
                raise self._unwritable(exc) from None
            self._linkless = True
            return self._write_in_place()
        finally:
            self._tmp.unlink(missing_ok=True)
        return True

    def _write_in_place(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise self._unwritable(exc) from None
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self._body())
        except OSError as exc:
            self.path.unlink(missing_ok=True)  # ours, and empty or cut short: never left to block a later run
            raise self._unwritable(exc) from None
        return True

    def _read(self, path: Path | None = None) -> tuple[bytes | None, os.stat_result | None] | None:
        """The lock's content and the file it was read from; None if there is no lock."""
        path = path or self.path
        try:
            with open(path, "rb") as fh:
                return fh.read(), os.fstat(fh.fileno())
        except FileNotFoundError:
            return None
        except OSError:
            try:
                return None, path.stat()  # unreadable: judged as garbage
            except FileNotFoundError:
                return None

    def _is_stale(self, holder: dict, seen: tuple) -> bool:
        if not all(key in holder for key in FIELDS):  # empty or garbage: locks are published whole
            return not self._linkless or time.time() - seen[1].st_mtime > GRACE
        if holder["host"] == self.owner["host"] and isinstance(holder["pid"], int):
            return not alive(holder["pid"], holder.get("start"))
        beat = holder["heartbeat"]
        return not isinstance(beat, (int, float)) or time.time() - beat > STALE_AFTER

    def _prepare(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"output {self.label} is not writable: {exc}") from None

    def _take_over(self, seen: tuple) -> bool:
        """Remove the stale lock `seen` unless it changed meanwhile; False while another run is removing it."""
        if self._linkless:
            return self._take_over_by_rename(seen)
        reaper = self.path.with_name(f".{self.path.name}.stale-{seen[1].st_ino}")
        try:
            os.link(self.path, reaper)  # only one run can make this name: the others wait for it
        except FileNotFoundError:
            return True
        except FileExistsError:
            try:
                if time.time() - reaper.stat().st_ctime > REAPER_STALE:
                    reaper.unlink()
            except FileNotFoundError:
                pass
            return False
        except OSError as exc:
            if exc.errno not in NO_LINKS:  # e.g. a lock of another user under fs.protected_hardlinks
                raise self._unwritable(exc) from None
            self._linkless = True
            return self._take_over_by_rename(seen)
        try:
            now = self._read(reaper)
            if now is not None and now[0] == seen[0] and now[1].st_ino == seen[1].st_ino:
                self.path.unlink()  # still the file judged stale: nobody else may remove it while `reaper` exists
        finally:
            reaper.unlink(missing_ok=True)
        return True

    def _take_over_by_rename(self, seen: tuple) -> bool:
        """Without hard links: renamed aside, and put back if it is not the lock judged stale (best effort)."""
        aside = self.path.with_name(f".{self.path.name}.stale-{uuid.uuid4().hex[:8]}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True
        now = self._read(aside)
        if now is not None and now[0] != seen[0] and not self.path.exists():
            os.rename(aside, self.path)
        aside.unlink(missing_ok=True)
        return True

    def _write_heartbeat(self) -> None:
        self._tmp.write_bytes(self._body())
        os.replace(self._tmp, self.path)

    def _remove(self) -> None:
        self.path.unlink()

    def acquire(self) -> None:
        self._prepare()
        for attempt in range(20):
            if self._write_new():
                self._start_heartbeat()
                return
            seen = self._read()
            if seen is None:
                continue  # released meanwhile: try again
            holder = _parse(seen[0])
            if not self._is_stale(holder, seen):
                raise LockedError(
                    f"output {self.label} is being written by another run "
                    f"(host {holder.get('host', '?')}, pid {holder.get('pid', '?')})",
                    hint="wait for it to finish; a lock left by a killed run is taken over automatically")
            if not self._take_over(seen):
                time.sleep(0.002 * (attempt + 1))
        raise LockedError(f"output {self.label}: could not take the lock after several tries")

    def _mine(self) -> bool:
        seen = self._read()
        return seen is not None and _parse(seen[0]).get("token") == self.owner["token"]

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
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._mine():
            try:
                self._remove()
            except FileNotFoundError:
                pass
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)  # a heartbeat cut short by a full disk


class ObjectStoreLock(OutputLock):
    """The same protocol on an fsspec filesystem without rename: conditional create, content-checked delete."""

    def __init__(self, fs, path: str, *, label: str) -> None:
        super().__init__(Path(path), label=label)
        self.fs, self.url = fs, path
        self._tmp = None

    def _write_new(self) -> bool:
        try:
            with self.fs.open(self.url, "xb") as fh:  # uploaded whole on close: never seen half-written
                fh.write(self._body())
        except FileExistsError:
            return False
        return True

    def _read(self, path=None) -> tuple[bytes | None, None] | None:
        try:
            self.fs.invalidate_cache(self.url)
            return self.fs.cat_file(self.url), None
        except FileNotFoundError:
            return None
        except OSError:
            return None, None

    def _prepare(self) -> None:
        pass  # object stores have no folders to make

    def _take_over(self, seen: tuple) -> bool:
        """Delete the stale lock only if it still holds the content that was judged stale (empty included)."""
        if self._read() == seen:
            try:
                self.fs.rm_file(self.url)
            except FileNotFoundError:
                pass
        return True

    def _write_heartbeat(self) -> None:
        self.fs.pipe_file(self.url, self._body())

    def _remove(self) -> None:
        self.fs.rm_file(self.url)
