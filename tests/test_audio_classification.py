"""Audio columns and audio-classification on tiny random wav2vec2 and AST models: equal to transformers'
pipeline on torch, ort and openvino; every column layout decoded (WAV, FLAC, OGG, MP3 bytes, datasets structs,
relative paths; 8/16/44.1 kHz, stereo); bad audio becomes row errors; outputs read back with polars and pyarrow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import batchinfer
from batchinfer.cli import main
from batchinfer.errors import EXIT_ROWS_FAILED
from batchinfer.job import BatchingSpec, ModelSpec
from batchinfer.media import medium
from batchinfer.pipelines import build_pipeline
from tests.tiny_audio import RATE, build_ast, build_wav2vec2_classifier, clips, encoded, tone

BACKENDS = ["torch", "ort", "openvino"]
CLIPS = clips(10)


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audio-classifiers")
    return {"wav2vec2": build_wav2vec2_classifier(root / "wav2vec2"), "ast": build_ast(root / "ast")}


def reference(path: Path, values, **call):
    from transformers import pipeline

    return pipeline("audio-classification", model=str(path), device="cpu")(values, **call)


def assert_same(got, want):
    assert [[d["label"] for d in row] for row in got] == [[d["label"] for d in row] for row in want]
    np.testing.assert_allclose([[d["score"] for d in row] for row in got],
                               [[d["score"] for d in row] for row in want], atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["wav2vec2", "ast"])
def test_audio_classification_equals_transformers(classifiers, kind, backend):
    """Clips of 0.1-3 s, some of equal length (one model call), batched by length; the call contract."""
    want = reference(classifiers[kind], [c.copy() for c in CLIPS])
    assert len({tuple(d["label"] for d in row) for row in want}) > 1  # the clips rank the labels differently
    classify = batchinfer.pipeline("audio-classification", model=str(classifiers[kind]), accelerator=backend)
    assert_same(classify(CLIPS, batch_size=4), want)
    single = classify(CLIPS[0], top_k=2)
    assert_same([single], [reference(classifiers[kind], CLIPS[0].copy(), top_k=2)])
    resampled = classify({"array": tone(1.0, rate=8000, noise=0.0), "sampling_rate": 8000})  # another rate
    native = classify(tone(1.0, noise=0.0))
    assert resampled[0]["label"] == native[0]["label"]
    assert resampled[0]["score"] == pytest.approx(native[0]["score"], abs=0.02)
    pipe = build_pipeline(ModelSpec(name=str(classifiers[kind]), task="audio-classification", backend=backend,
                                    top_k=1))
    out = pipe.predict(CLIPS, BatchingSpec(batch_size=16))
    assert out["label"].to_pylist() == [row[0]["label"] for row in want]


def _layouts(tmp_path: Path) -> pa.Table:
    """One clip per layout and format, and rows that cannot be decoded."""
    base = tone(1.2, seed=3)
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.flac").write_bytes(encoded(tone(0.8, rate=44100, seed=4), 44100, "FLAC", channels=2))
    rows = [
        ("wav float 16k", encoded(base, RATE, "WAV", "FLOAT")),
        ("wav pcm16 8k", encoded(tone(1.0, rate=8000, seed=5), 8000, "WAV", "PCM_16")),
        ("flac 44.1k stereo", encoded(tone(0.8, rate=44100, seed=4), 44100, "FLAC", channels=2)),
        ("ogg 16k", encoded(tone(1.5, seed=6), RATE, "OGG", "VORBIS")),
        ("mp3 16k", encoded(tone(1.0, seed=7), RATE, "MP3", "MPEG_LAYER_III")),
        ("not audio", b"RIFF....not a wav file"),
        ("empty wav", encoded(np.zeros(0, np.float32), RATE, "WAV", "FLOAT")),
        ("too long", encoded(tone(12.0, seed=8), RATE, "WAV", "FLOAT")),
        ("null", None),
    ]
    return pa.table({"id": list(range(len(rows))), "kind": [k for k, _ in rows],
                     "audio": pa.array([v for _, v in rows], pa.binary())})


def test_a_job_decodes_every_layout_and_dead_letters_bad_audio(tmp_path, classifiers):
    table = _layouts(tmp_path)
    pq.write_table(table, tmp_path / "in.parquet")
    structs = pa.table({  # the datasets layouts: {bytes, path} with a relative path, {array, sampling_rate}
        "id": [100, 101, 102, 103],
        "audio": pa.array([{"bytes": None, "path": "clips/a.flac"}, {"bytes": table["audio"][0].as_py(), "path": "x"},
                           {"bytes": None, "path": "clips/missing.wav"}, {"bytes": None, "path": None}],
                          pa.struct([("bytes", pa.binary()), ("path", pa.string())]))})
    pq.write_table(structs, tmp_path / "structs.parquet")
    arrays = pa.table({"id": [200, 201], "audio": pa.array(
        [{"array": tone(1.2, seed=3).tolist(), "sampling_rate": RATE},
         {"array": tone(1.0, rate=22050, seed=9).tolist(), "sampling_rate": 22050}],
        pa.struct([("array", pa.list_(pa.float32())), ("sampling_rate", pa.int64())]))})
    pq.write_table(arrays, tmp_path / "arrays.parquet")
    results = {}
    for name in ("in", "structs", "arrays"):
        job = tmp_path / f"{name}.toml"
        job.write_text(f"""
[input]
path = "{name}.parquet"
column = "audio"
on_error = "dead-letter"
[model]
name = {json.dumps(str(classifiers["wav2vec2"]))}
task = "audio-classification"
backend = "ort"
max_duration_s = 10
[output]
path = "out-{name}"
keep_columns = ["id"]
""")
        results[name] = CliRunner().invoke(main, ["run", str(job)])
    assert results["in"].exit_code == EXIT_ROWS_FAILED, results["in"].output
    assert results["structs"].exit_code == EXIT_ROWS_FAILED, results["structs"].output
    assert results["arrays"].exit_code == 0, results["arrays"].output

    out = pl.read_parquet(str(tmp_path / "out-in" / "*.parquet"))
    assert out["id"].to_list() == [0, 1, 2, 3, 4]
    assert pq.read_table(str(tmp_path / "out-in")).schema.field("score").type == pa.float32()
    dead = pl.read_parquet(str(tmp_path / "out-in" / "_dead_letter" / "*.parquet")).sort("id")
    errors = dict(zip(dead["id"].to_list(), dead["_error"].to_list()))
    assert set(errors) == {5, 6, 7, 8}
    assert errors[5].startswith("audio cannot be decoded") and "empty" in errors[6]
    assert "12.0 s long" in errors[7] and "max_duration_s = 10" in errors[7] and "null" in errors[8]
    structs_out = pq.read_table(str(tmp_path / "out-structs")).to_pylist()
    assert [r["id"] for r in structs_out] == [100, 101]
    structs_dead = pl.read_parquet(str(tmp_path / "out-structs" / "_dead_letter" / "*.parquet")).sort("id")
    assert structs_dead["id"].to_list() == [102, 103] and "not found" in structs_dead["_error"][0]

    # the same clip as float WAV bytes, inside a struct, and as a decoded array: the same prediction
    pipe = build_pipeline(ModelSpec(name=str(classifiers["wav2vec2"]), task="audio-classification", backend="ort"))
    direct = pipe.predict([tone(1.2, seed=3)])
    arrays_out = pl.read_parquet(str(tmp_path / "out-arrays" / "*.parquet"))
    for score in (out["score"][0], structs_out[1]["score"], arrays_out["score"][0]):
        assert score == pytest.approx(direct["score"][0].as_py(), abs=1e-6)
    frame = pl.DataFrame({"id": [0, 1], "audio": [table["audio"][0].as_py(), table["audio"][3].as_py()]})
    api = batchinfer.predict(frame, "audio", task="audio-classification", model=str(classifiers["wav2vec2"]),
                             backend="ort")  # the polars API: the same column of bytes
    assert api["label"].to_list() == out["label"].to_list()[0:4:3]
    assert api["score"][0] == pytest.approx(out["score"][0], abs=1e-6)


def test_decoding_mixes_to_mono_and_resamples(tmp_path):
    """Each format decodes to the clip at the model's rate: the right length, and the same signal as the
    tone made at 16 kHz (stereo mixed as the mean of its channels)."""
    class Extractor:
        sampling_rate = RATE

    audio = medium("audio")
    for rate, fmt, subtype, channels in [(8000, "WAV", "PCM_16", 1), (44100, "FLAC", "PCM_24", 2),
                                         (RATE, "OGG", "VORBIS", 1), (22050, "WAV", "FLOAT", 2),
                                         (RATE, "MP3", "MPEG_LAYER_III", 1)]:
        data = encoded(tone(2.0, rate=rate, noise=0.0), rate, fmt, subtype, channels)
        (decoded,), errors = audio.decode_column(pa.array([data]), base=str(tmp_path), fs=None,
                                                 processor=Extractor())
        assert not errors
        want = tone(2.0, rate=RATE, noise=0.0) * (0.75 if channels == 2 else 1.0)
        assert decoded.dtype == np.float32 and abs(len(decoded) - len(want)) <= 0.01 * RATE, (fmt, len(decoded))
        middle = slice(RATE // 2, RATE + RATE // 2)  # away from codec edges
        if fmt != "MP3":  # MP3 shifts the signal by its encoder delay
            assert np.corrcoef(decoded[middle], want[middle])[0, 1] > 0.99, (fmt, rate)
        assert abs(np.abs(decoded[middle]).mean() - np.abs(want[middle]).mean()) < 0.05, (fmt, rate)
