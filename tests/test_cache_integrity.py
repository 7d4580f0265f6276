"""A cached artifact cut short or changed after it was built is rebuilt once, with a warning; temporaries left
by a killed build are listed and removed; `cache list` knows every kind; `cache clear` says what it removes."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import batchinfer.model.onnx_export as export
from batchinfer.backends.openvino import OpenVinoBackend
from batchinfer.backends.ort import OrtBackend
from batchinfer.cli import main
from batchinfer.errors import ModelError
from tests.test_export_cache import graph_for


@pytest.fixture
def warnings_seen(caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("batchinfer"), "propagate", True)  # the CLI's setup turns it off
    caplog.set_level(logging.WARNING, logger="batchinfer")
    return caplog


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def scramble(path: Path) -> None:
    """Same size, other bytes (its head zeroed: no runtime parses it)."""
    data = path.read_bytes()
    path.write_bytes(bytes(4096) + data[4096:])


def scramble_keeping_mtime(path: Path) -> None:
    """A change that neither size nor modification time shows: only the runtime's failure and a checksum tell."""
    before = path.stat()
    scramble(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def ort(model: Path, cache: Path, quantize: str = "none") -> OrtBackend:
    return OrtBackend(graph_for(model), threads=1, cache_dir=cache, quantize=quantize)


def logits(backend) -> list:
    import numpy as np

    feed = {name: np.ones((1, 6), dtype=np.int64) for name in ("input_ids", "token_type_ids", "attention_mask")}
    return backend.forward(feed)["logits"].round(4).tolist()


@pytest.mark.parametrize("damage", [cut_in_half, scramble, scramble_keeping_mtime])
def test_a_broken_onnx_export_is_rebuilt_once(tiny_classifier, fresh_cache, warnings_seen, damage):
    good = ort(tiny_classifier, fresh_cache)
    expected = logits(good)
    damage(good.artifact)
    again = ort(tiny_classifier, fresh_cache)
    assert again.artifact == good.artifact and logits(again) == expected
    assert "cached ONNX export" in warnings_seen.text and "was broken (model.onnx" in warnings_seen.text
    assert "rebuilt it" in warnings_seen.text
    warnings_seen.clear()
    ort(tiny_classifier, fresh_cache)  # whole again: no second rebuild
    assert "broken" not in warnings_seen.text


def test_a_broken_int8_artifact_is_rebuilt(tiny_classifier, fresh_cache, warnings_seen):
    good = ort(tiny_classifier, fresh_cache, "dynamic-int8")
    fp32 = ort(tiny_classifier, fresh_cache).artifact.stat().st_mtime_ns
    cut_in_half(good.artifact)
    again = ort(tiny_classifier, fresh_cache, "dynamic-int8")
    assert again.artifact == good.artifact and logits(again) == logits(good)
    assert "cached quantized ONNX model" in warnings_seen.text and "rebuilt it" in warnings_seen.text
    assert ort(tiny_classifier, fresh_cache).artifact.stat().st_mtime_ns == fp32  # its source was whole


@pytest.mark.parametrize("file", ["model.bin", "model.xml"])
def test_a_broken_openvino_ir_is_rebuilt(tiny_classifier, fresh_cache, warnings_seen, file):
    good = OpenVinoBackend(graph_for(tiny_classifier), threads=1, cache_dir=fresh_cache)
    expected = logits(good)
    cut_in_half(good.artifact.parent / file)
    again = OpenVinoBackend(graph_for(tiny_classifier), threads=1, cache_dir=fresh_cache)
    assert logits(again) == expected
    assert "cached OpenVINO IR" in warnings_seen.text and f"was broken ({file}" in warnings_seen.text


def test_a_rebuild_that_fails_too_says_how_to_clear_the_cache(tiny_classifier, fresh_cache, monkeypatch):
    path = ort(tiny_classifier, fresh_cache).artifact
    scramble_keeping_mtime(path)

    def garbage(graph, target, opset):  # the export itself now writes something no runtime loads
        (target / "model.onnx").write_bytes(b"not a model")

    monkeypatch.setattr(export, "_export", garbage)
    with pytest.raises(ModelError, match="even after rebuilding") as info:
        ort(tiny_classifier, fresh_cache)
    assert "batchinfer cache clear" in info.value.hint


BUILDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from batchinfer.model.cache_folder import build_once

    def build(tmp):
        (tmp / "model.onnx").write_bytes(b"x" * 3_000_000)
        print("building", flush=True)
        time.sleep(600)

    build_once(Path(sys.argv[1]), "export.json", build, what="a test build")
""")


def start_build(final: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", BUILDER, str(final)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "building"
    return proc


def temporaries(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "onnx").glob(".*") if ".tmp-" in p.name)


def test_temporaries_of_a_killed_build_are_listed_and_removed(fresh_cache, tiny_classifier):
    live = start_build(fresh_cache / "onnx" / "live")  # another run building right now: never touched
    killed = start_build(fresh_cache / "onnx" / "killed")
    killed.kill()
    killed.wait()
    try:
        assert len(temporaries(fresh_cache)) == 2
        listed = CliRunner().invoke(main, ["cache", "list", "--cache-dir", str(fresh_cache)])
        assert listed.exit_code == 0, listed.output
        lines = [line for line in listed.output.splitlines() if line.startswith("temporary")]
        assert len(lines) == 2 and all(" 3.0 MB" in line for line in lines), listed.output
        assert sum("stale" in line for line in lines) == 1 and f"pid {live.pid}" in listed.output
        export.export_onnx(graph_for(tiny_classifier), fresh_cache)  # the next build sweeps the stale one
        left = temporaries(fresh_cache)
        assert len(left) == 1 and left[0].startswith(".live.tmp-")
        cleared = CliRunner().invoke(main, ["cache", "clear", "--yes", "--cache-dir", str(fresh_cache)])
        assert cleared.exit_code == 0, cleared.output
        assert temporaries(fresh_cache) == left  # still in use
    finally:
        live.kill()
        live.wait()
    cleared = CliRunner().invoke(main, ["cache", "clear", "--yes", "--cache-dir", str(fresh_cache)])
    assert cleared.exit_code == 0 and temporaries(fresh_cache) == []


def test_an_old_temporary_of_unknown_owner_is_stale(fresh_cache):
    old = fresh_cache / "onnx" / ".abc.tmp-k2j4h5g6"  # named as older versions did: judged by its age
    old.mkdir(parents=True)
    (old / "model.onnx").write_bytes(b"x" * 1000)
    result = CliRunner().invoke(main, ["cache", "clear", "--yes", "--cache-dir", str(fresh_cache)])
    assert old.exists(), result.output  # young: maybe a build in progress
    past = time.time() - 7 * 3600
    os.utime(old, (past, past))
    os.utime(old / "model.onnx", (past, past))
    result = CliRunner().invoke(main, ["cache", "clear", "--yes", "--cache-dir", str(fresh_cache)])
    assert result.exit_code == 0 and not old.exists(), result.output


def test_cache_list_shows_every_kind_and_clear_says_what_it_removes(tiny_classifier, fresh_cache):
    ort(tiny_classifier, fresh_cache, "dynamic-int8")
    OpenVinoBackend(graph_for(tiny_classifier), threads=1, cache_dir=fresh_cache)
    listed = CliRunner().invoke(main, ["cache", "list", "--cache-dir", str(fresh_cache)])
    kinds = sorted(line.split()[0] for line in listed.output.splitlines()[:-1])
    assert [k for k in kinds if k != "model-hash"] == ["onnx", "onnx-int8", "openvino"], listed.output
    count = f"{len(kinds)} entries"  # and the model folder's remembered hash, where its files are 2 s old
    assert count in listed.output
    before = sorted(p.name for p in fresh_cache.rglob("*"))

    declined = CliRunner().invoke(main, ["cache", "clear", "--cache-dir", str(fresh_cache)], input="n\n")
    assert declined.exit_code == 0, declined.output
    assert "onnx-int8" in declined.output and count in declined.output and " MB" in declined.output
    assert declined.output.index("onnx-int8") < declined.output.index("Remove")
    assert "nothing removed" in declined.output
    assert sorted(p.name for p in fresh_cache.rglob("*")) == before

    no_answer = CliRunner().invoke(main, ["cache", "clear", "--cache-dir", str(fresh_cache)], input="")
    assert no_answer.exit_code == 0 and "nothing removed" in no_answer.output

    accepted = CliRunner().invoke(main, ["cache", "clear", "--cache-dir", str(fresh_cache)], input="y\n")
    assert accepted.exit_code == 0 and "removed" in accepted.output and "nothing removed" not in accepted.output
    assert not [p for p in fresh_cache.rglob("*") if p.is_file()]
    empty = CliRunner().invoke(main, ["cache", "clear", "--cache-dir", str(fresh_cache)])
    assert empty.exit_code == 0 and "nothing to remove" in empty.output


def test_cache_list_names_every_int8_kind_and_clear_removes_exactly_what_it_listed(tiny_classifier, fresh_cache):
    from batchinfer.model.samples import assemble

    ort(tiny_classifier, fresh_cache, "dynamic-int8")  # and the ONNX export it is made from
    OpenVinoBackend(graph_for(tiny_classifier), threads=1, cache_dir=fresh_cache)
    OpenVinoBackend(graph_for(tiny_classifier), threads=1, cache_dir=fresh_cache, quantize="int8-weights")
    assemble("digits", fresh_cache)
    (fresh_cache / "notes.txt").write_text("not ours")
    listed = CliRunner().invoke(main, ["cache", "list", "--cache-dir", str(fresh_cache)])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()[:-1]
    kinds = sorted(line.split()[0] for line in lines)
    assert [k for k in kinds if k != "model-hash"] == ["models", "onnx", "onnx-int8", "openvino",
                                                       "openvino-int8"], listed.output
    assert "model-hash" in kinds  # the sample's folders are old enough for their hashes to be kept
    shown = {Path(line.split()[-1]) for line in lines}
    built = {p for sub in ("onnx", "openvino", "models", "hashes") for p in (fresh_cache / sub).iterdir()}
    assert shown == built  # nothing hidden
    cleared = CliRunner().invoke(main, ["cache", "clear", "--yes", "--cache-dir", str(fresh_cache)])
    assert cleared.exit_code == 0, cleared.output
    assert cleared.output.splitlines()[:len(lines)] == lines and f"{len(lines)} entries" in cleared.output
    assert not any(path.exists() for path in shown)
    assert sorted(p.name for p in fresh_cache.iterdir()) == ["notes.txt"]  # the rest is left alone


def test_a_copied_but_unchanged_export_is_not_rebuilt(tiny_classifier, fresh_cache, monkeypatch, warnings_seen):
    path = export.export_onnx(graph_for(tiny_classifier), fresh_cache)
    later = time.time() + 100
    os.utime(path, (later, later))  # as `cp -r` leaves it: a new modification time, the same bytes

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(export, "_export", no_export)
    assert export.export_onnx(graph_for(tiny_classifier), fresh_cache) == path
    meta = json.loads((path.parent / export.COMPLETE).read_text())
    assert meta["files"]["model.onnx"]["mtime_ns"] == path.stat().st_mtime_ns  # checked once, recorded anew
    assert "broken" not in warnings_seen.text
