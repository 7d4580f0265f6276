"""A model folder's content hash, remembered in the cache per listing of its files (names, sizes, modification
and change times), so that a job over an unchanged folder fingerprints it without reading every weight file
(0.15 s for all-MiniLM-L6-v2, seconds for a large model). Any change to a file's size or times makes a new
listing, so the folder is hashed anew."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

from batchinfer.errors import ModelError
from batchinfer.model.cache_dir import HASHES
from batchinfer.model.cache_folder import build_once, is_built
from batchinfer.model.folders import hash_folder, hashed_files

log = logging.getLogger("batchinfer")
RECENT_NS = 2_000_000_000  # a file changed this recently may change again within one timestamp tick: not kept


def folder_hash(path: Path, cache_dir: Path) -> str:
    """`hash_folder(path)`, from the cache where this listing of the folder was hashed before."""
    files = hashed_files(path)
    try:
        stats = [(rel, file.stat()) for rel, file in files]
    except OSError:  # a file went away meanwhile: hashing says what is missing
        return hash_folder(path)
    listing = [(rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns) for rel, st in stats]
    key = hashlib.sha256(json.dumps([str(Path(path).resolve()), listing]).encode()).hexdigest()[:24]
    final = Path(cache_dir) / HASHES.folder / key
    if is_built(final, HASHES.marker):
        try:
            return json.loads((final / HASHES.marker).read_text())["hash"]
        except (OSError, ValueError, KeyError, TypeError):
            pass  # hashed again below
    digest = hash_folder(path, files)
    newest = max((max(st.st_mtime_ns, st.st_ctime_ns) for _, st in stats), default=0)
    if time.time_ns() - newest > RECENT_NS:

        def write(tmp: Path) -> None:
            (tmp / HASHES.marker).write_text(json.dumps({"model": str(path), "hash": digest}, indent=2))

        try:
            build_once(final, HASHES.marker, write, what="remembering a model folder's hash")
        except ModelError as exc:  # a read-only cache: hashed each time
            log.debug("model hash not kept: %s", exc)
    return digest
