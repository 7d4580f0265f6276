"""The output lock: never left empty by a full disk, an empty or garbage lock is stale, and of several runs
taking over a stale lock at the same instant exactly one holds it."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from batchinfer.cli import main
from batchinfer.errors import LockedError, OutputError
from batchinfer.io.lock import ObjectStoreLock, OutputLock
from tests.test_resume import assert_same_output, workdir  # noqa: F401  (a fixture)
from tests.test_storage import store  # noqa: F401  (a fixture: S3 on moto and Azurite)


def dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def dead_holder() -> str:
    # a wrong start time too: even if the pid is reused meanwhile, its holder is gone
    return json.dumps({"host": socket.gethostname(), "pid": dead_pid(), "start": "1", "heartbeat": time.time(),
                       "token": "dead"})


def test_a_full_disk_leaves_no_lock_and_is_an_output_error(tmp_path, monkeypatch):
    real = Path.write_bytes

    def full(self, data):
        if self.parent == tmp_path:
            self.open("wb").close()  # created, then the write fails: what a full disk does
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OutputError, match="out/here.*(disk|quota) is full") as info:
        OutputLock(tmp_path / "lock", label="out/here").acquire()
    assert not isinstance(info.value, LockedError)
    assert list(tmp_path.iterdir()) == []  # nothing left behind to block the next run
    monkeypatch.undo()
    lock = OutputLock(tmp_path / "lock", label="out/here")
    lock.acquire()
    lock.release()


@pytest.mark.parametrize("content", ["", "{\"ho", "[1, 2]", "{\"host\": \"elsewhere\"}"])
def test_an_empty_or_garbage_lock_is_taken_over_at_once(tmp_path, content):
    (tmp_path / "lock").write_text(content)
    lock = OutputLock(tmp_path / "lock", label="out")
    lock.acquire()
    try:
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()
        with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
            OutputLock(tmp_path / "lock", label="out").acquire()
    finally:
        lock.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_an_empty_lock_left_behind_is_taken_over_by_a_run(workdir, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    (out / "_batchinfer").mkdir(parents=True)
    (out / "_batchinfer" / "lock").write_bytes(b"")
    result = CliRunner().invoke(main, ["run", str(workdir / "job.toml"), "--set", f"output.path={out}"])
    assert result.exit_code == 0, result.output
    assert_same_output(out, workdir / "clean")
    assert not (out / "_batchinfer" / "lock").exists()


def _contender(path: str, inside: str, rounds: int, start, attempted, results) -> None:
    for _ in range(rounds):
        start.wait()
        lock, held = OutputLock(Path(path), label="out"), False
        try:
            lock.acquire()
            held = True
            fd = os.open(inside, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # FileExistsError: two holders at once
            os.close(fd)
            outcome = "held"
        except LockedError:
            outcome = "locked"
        except Exception as exc:  # noqa: BLE001  (reported to the test)
            outcome = f"{type(exc).__name__}: {exc}"
        attempted.wait()  # every contender has tried before the holder lets go
        if held:
            if outcome == "held":
                os.unlink(inside)
            lock.release()
        results.put(outcome)


def test_racing_takeovers_of_a_dead_lock_give_one_holder(tmp_path):
    rounds, n = 40, 4
    ctx = multiprocessing.get_context("spawn")
    start, attempted, results = ctx.Barrier(n + 1), ctx.Barrier(n), ctx.Queue()
    lock, inside = tmp_path / "lock", tmp_path / "inside"
    workers = [ctx.Process(target=_contender, args=(str(lock), str(inside), rounds, start, attempted, results))
               for _ in range(n)]
    for w in workers:
        w.start()
    try:
        for round_ in range(rounds):
            lock.write_text(dead_holder())
            start.wait(timeout=60)
            outcomes = sorted(results.get(timeout=60) for _ in range(n))
            assert outcomes == ["held"] + ["locked"] * (n - 1), f"round {round_}: {outcomes}"
            assert not lock.exists() and not inside.exists()
    finally:
        for w in workers:
            w.join(timeout=10)
            if w.is_alive():
                w.kill()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no aside or temporary files left


def test_without_hard_links_a_young_empty_lock_is_left_to_its_writer(tmp_path, monkeypatch):
    import batchinfer.io.lock as lock_module

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")  # what FUSE mounts without hard links answer

    monkeypatch.setattr(lock_module.os, "link", no_links)
    (tmp_path / "lock").write_bytes(b"")  # a lock being written right now
    with pytest.raises(LockedError):
        OutputLock(tmp_path / "lock", label="out").acquire()
    old = time.time() - 60
    os.utime(tmp_path / "lock", (old, old))  # ...or one a full disk cut short a minute ago
    lock = OutputLock(tmp_path / "lock", label="out")
    lock.acquire()
    with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
        OutputLock(tmp_path / "lock", label="out").acquire()
    lock.release()
    assert list(tmp_path.iterdir()) == []


def test_an_empty_lock_on_an_object_store_is_taken_over_only_while_unchanged(store):  # noqa: F811
    url = f"{store.bucket}/out/_batchinfer/lock"
    store.fs.pipe_file(url, b"")
    late = ObjectStoreLock(store.fs, url, label="out")
    seen = late._read()  # judged stale by a run that is slow to act on it...
    lock = ObjectStoreLock(store.fs, url, label="out")
    lock.acquire()
    try:
        assert json.loads(store.fs.cat_file(url))["token"] == lock.owner["token"]
        late._take_over(seen)  # ...so it must not delete the lock taken meanwhile
        with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
            late.acquire()
    finally:
        lock.release()
    assert not store.fs.exists(url)
