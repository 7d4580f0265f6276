"""Build a cache folder once, atomically: into a temporary sibling, then renamed into place; rebuilt if broken.

A folder counts as built only when its marker file exists (written last by the builder), so a folder left
half-written by a crash is rebuilt, and of two processes building at once the first rename wins. The marker also
records the size, modification time and SHA-256 of every file built: a file cut short or changed since (a full
disk, a stray edit) makes the folder broken, and it is rebuilt once, with a warning. Temporary folders carry
the builder's pid, start time and host in their name, so those left by a killed build are found stale (and
removed by the next build or `batchinfer cache clear`) while one in use by a running build never is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from batchinfer.errors import BatchinferError, ModelError
from batchinfer.io.lock import alive, start_time

log = logging.getLogger("batchinfer")
T = TypeVar("T")

TEMP = ".tmp-"
UNKNOWN_OWNER_STALE_AFTER = 6 * 3600.0  # a temporary of another host (or an older version) idle this long is dead
CLEAR_HINT = "run `batchinfer cache clear` to remove the cached artifacts, then rerun; if it fails again, report it"


def is_built(final: Path, marker: str) -> bool:
    return (final / marker).is_file()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _record(folder: Path, marker: str) -> None:
    """Add to the marker what each built file is, so that a later change is seen."""
    meta = json.loads((folder / marker).read_text())
    meta["files"] = {p.relative_to(folder).as_posix(): {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                                         "sha256": _sha256(p)}
                     for p in sorted(folder.rglob("*")) if p.is_file() and p.name != marker
                     for st in [p.stat()]}
    (folder / marker).write_text(json.dumps(meta, indent=2))


def damage(final: Path, marker: str, *, deep: bool = False) -> str | None:
    """Why a built folder is not what was built (a file missing, cut short or changed), or None.

    Sizes are always compared; checksums when a file's modification time moved (then recorded anew if the file
    is unchanged, as after a copy), or with `deep`.
    """
    try:
        meta = json.loads((final / marker).read_text())
        files = meta["files"]
    except (OSError, ValueError, TypeError, KeyError):
        return "it has no record of its files" if deep else None  # built by an older version: trusted until it fails
    moved = False
    for name, built in files.items():
        try:
            st = (final / name).stat()
        except OSError:
            return f"{name} is missing"
        if st.st_size != built["size"]:
            return f"{name} is {st.st_size} bytes, {built['size']} when built"
        if deep or st.st_mtime_ns != built["mtime_ns"]:
            if _sha256(final / name) != built["sha256"]:
                return f"{name} changed since it was built (its SHA-256 differs)"
            moved = moved or st.st_mtime_ns != built["mtime_ns"]
            built["mtime_ns"] = st.st_mtime_ns
    if moved:
        tmp = final / f".{marker}.{uuid.uuid4().hex[:8]}"
        try:
            tmp.write_text(json.dumps(meta, indent=2))
            os.replace(tmp, final / marker)
        except OSError:
            tmp.unlink(missing_ok=True)  # a read-only cache: checked again next time
    return None


def _temp_name(final: Path) -> Path:
    pid = os.getpid()
    return final.with_name(f".{final.name}{TEMP}{pid}-{start_time(pid) or 0}-{uuid.uuid4().hex[:8]}"
                           f"@{socket.gethostname()}")


def _owner(temp: Path) -> tuple[int, str | None] | None:
    """The pid and start time of the process on this host that made temporary folder `temp`; None if unknown."""
    owner, _, host = temp.name.split(TEMP, 1)[-1].rpartition("@")
    parts = owner.split("-", 2)
    if host != socket.gethostname() or len(parts) < 3 or not parts[0].isdigit():
        return None
    return int(parts[0]), None if parts[1] == "0" else parts[1]


def builder(temp: Path) -> int | None:
    """The pid of the running process building temporary folder `temp`, if it is one on this host."""
    owner = _owner(temp)
    return owner[0] if owner is not None and alive(*owner) else None


def is_stale_temp(temp: Path) -> bool:
    """A temporary folder nobody builds any more: its process is gone (this host), or it is long idle (else)."""
    if _owner(temp) is not None:
        return builder(temp) is None
    try:
        newest = max([temp.stat().st_mtime] + [p.stat().st_mtime for p in temp.rglob("*")])
    except OSError:
        return False  # changing right now
    return time.time() - newest > UNKNOWN_OWNER_STALE_AFTER


def temporaries(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in Path(folder).iterdir() if p.name.startswith(".") and TEMP in p.name)
    except OSError:
        return []


def remove_stale_temps(folder: Path) -> None:
    for temp in temporaries(folder):
        if is_stale_temp(temp):
            shutil.rmtree(temp, ignore_errors=True)


def _discard(final: Path) -> None:
    """Move a folder out of the way first (a rename is atomic), then delete it."""
    aside = _temp_name(final)
    try:
        os.rename(final, aside)
    except FileNotFoundError:
        return
    shutil.rmtree(aside, ignore_errors=True)


def build_once(final: Path, marker: str, build: Callable[[Path], None], *, what: str, kind: str | None = None,
               broken: str | None = None) -> Path:
    """Return `final`, first running `build(tmp)` (which must write `tmp/marker` last) unless already built and
    whole. `broken`: why the built `final` is known to be unusable (its runtime failed on it), to rebuild it."""
    final = Path(final)
    if broken is None and is_built(final, marker):
        broken = damage(final, marker)
        if broken is None:
            if kind:
                log.info("model: %s loaded from cache %s", kind, final)
            return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(final.parent)
        tmp = _temp_name(final)
        tmp.mkdir()
    except OSError as exc:
        raise ModelError(f"cache folder {final.parent} is not writable: {exc}",
                         hint="set BATCHINFER_CACHE or runtime.cache_dir to a writable folder") from None
    try:
        build(tmp)
        if not (tmp / marker).is_file():
            raise RuntimeError(f"the builder did not write {marker}")
        _record(tmp, marker)
        if final.exists() and (not is_built(final, marker) or (broken and damage(final, marker, deep=True))):
            _discard(final)  # a leftover without its marker, or still the broken one (not a concurrent rebuild)
        try:
            os.replace(tmp, final)
        except OSError:
            if not is_built(final, marker):
                raise  # a concurrent build won the race only if its marker is there
    except BatchinferError:
        raise
    except Exception as exc:
        raise ModelError(f"{what} failed: {type(exc).__name__}: {exc}",
                         hint=CLEAR_HINT if broken else None) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if broken:
        log.warning("cached %s %s was broken (%s); rebuilt it", kind or "folder", final, broken)
    return final


def load_cached(artifact: Callable[[str | None], Path], load: Callable[[Path], T], *, marker: str,
                runtime: str) -> tuple[Path, T]:
    """`load(artifact(None))`; if the runtime fails on a cached artifact that is not what was built, rebuild it
    once (`artifact(reason)`) and load that. The artifact's folder holds `marker`."""
    path = artifact(None)
    try:
        return path, load(path)
    except Exception as exc:  # noqa: BLE001  (a runtime's own error types)
        error = exc
    broken = damage(path.parent, marker, deep=True)
    if broken is None:  # the file is as it was built: the runtime itself fails on this model
        raise ModelError(f"{runtime} cannot load {path}: {error}") from None
    path = artifact(broken)
    try:
        return path, load(path)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{runtime} cannot load {path} even after rebuilding it: {exc}", hint=CLEAR_HINT) from None
