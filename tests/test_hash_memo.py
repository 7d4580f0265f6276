"""A model folder's content hash is remembered per listing of its files: an unchanged folder is not read again,
and any change to a file is hashed anew."""

from __future__ import annotations

import os

import pytest

import batchinfer.model.hash_memo as memo
from batchinfer.model.cache_dir import HASHES
from batchinfer.model.folders import hash_folder
from tests.conftest import copy_model


@pytest.fixture
def model(tiny_classifier, tmp_path, monkeypatch):
    """A copy of a model folder, remembered at once (else only once its files are 2 s old: they may change
    again within one timestamp tick)."""
    monkeypatch.setattr(memo, "RECENT_NS", -1)
    return copy_model(tiny_classifier, tmp_path / "model")


def _reads(monkeypatch) -> list:
    calls = []
    real = memo.hash_folder
    monkeypatch.setattr(memo, "hash_folder", lambda path, *files: calls.append(path) or real(path, *files))
    return calls


def test_unchanged_folder_is_hashed_once(model, fresh_cache, monkeypatch):
    reads = _reads(monkeypatch)
    first = memo.folder_hash(model, fresh_cache)
    assert first == hash_folder(model) and len(reads) == 1
    assert memo.folder_hash(model, fresh_cache) == first and len(reads) == 1
    assert len(list((fresh_cache / HASHES.folder).iterdir())) == 1


@pytest.mark.parametrize("change", ["same size", "new file", "removed file"])
def test_any_change_is_hashed_anew(change, model, fresh_cache, monkeypatch):
    before = memo.folder_hash(model, fresh_cache)
    if change == "same size":  # same size, and its times put back as they were: the change time still moves
        config = model / "config.json"
        st = config.stat()
        text = config.read_text()
        config.write_text(text.replace('"negative"', '"NEGATIVE"'))
        os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert config.stat().st_size == st.st_size
    elif change == "new file":
        (model / "added_tokens.json").write_text("{}")
    else:
        (model / "tokenizer_config.json").unlink()
    reads = _reads(monkeypatch)
    after = memo.folder_hash(model, fresh_cache)
    assert after == hash_folder(model) != before and len(reads) == 1


def test_recently_written_folder_is_not_remembered(tiny_classifier, tmp_path, fresh_cache, monkeypatch):
    model = copy_model(tiny_classifier, tmp_path / "fresh")  # its files' change times are now
    memo.folder_hash(model, fresh_cache)
    assert not (fresh_cache / HASHES.folder).exists()
    reads = _reads(monkeypatch)
    memo.folder_hash(model, fresh_cache)
    assert len(reads) == 1


def test_unreadable_memo_is_hashed_again(model, fresh_cache, monkeypatch):
    digest = memo.folder_hash(model, fresh_cache)
    (entry,) = (fresh_cache / HASHES.folder).iterdir()
    (entry / HASHES.marker).write_text("{cut short")
    reads = _reads(monkeypatch)
    assert memo.folder_hash(model, fresh_cache) == digest and len(reads) == 1
