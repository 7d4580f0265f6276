"""Build a cache folder once, atomically: into a temporary sibling, then renamed into place.

A folder counts as built only when its marker file exists (written last by the builder), so a folder left
half-written by a crash is rebuilt, and of two processes building at once the first rename wins.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from batchinfer.errors import BatchinferError, ModelError


def is_built(final: Path, marker: str) -> bool:
    return (final / marker).is_file()


def build_once(final: Path, marker: str, build: Callable[[Path], None], *, what: str) -> Path:
    """Return `final`, first running `build(tmp)` (which must write `tmp/marker` last) unless already built."""
    final = Path(final)
    if is_built(final, marker):
        return final
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    except OSError as exc:
        raise ModelError(f"cache folder {final.parent} is not writable: {exc}",
                         hint="set BATCHINFER_CACHE or runtime.cache_dir to a writable folder") from None
    try:
        build(tmp)
        if not (tmp / marker).is_file():
            raise RuntimeError(f"the builder did not write {marker}")
        if final.exists() and not is_built(final, marker):
            shutil.rmtree(final, ignore_errors=True)  # a leftover without its marker: never used
        try:
            os.replace(tmp, final)
        except OSError:
            if not is_built(final, marker):
                raise  # a concurrent build won the race only if its marker is there
    except BatchinferError:
        raise
    except Exception as exc:
        raise ModelError(f"{what} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final
