"""automatic-speech-recognition with a tiny random wav2vec2 CTC model: texts identical to transformers'
pipeline on torch, ort and openvino, whole clips and long audio in chunks with strides; a job over minutes
of audio in chunks; a clip too long to take whole is a row error."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import batchinfer
from batchinfer.cli import main
from batchinfer.errors import EXIT_ROWS_FAILED
from batchinfer.job import BatchingSpec, ModelSpec
from batchinfer.pipelines import build_pipeline
from tests.tiny_audio import RATE, build_wav2vec2_ctc, clips, encoded, long_audio

BACKENDS = ["torch", "ort", "openvino"]
CLIPS = clips(8, seed=2)


@pytest.fixture(scope="module")
def ctc(tmp_path_factory) -> Path:
    return build_wav2vec2_ctc(tmp_path_factory.mktemp("ctc") / "model")


def reference(path: Path, values, **call):
    return [r["text"] for r in reference_rows(path, values, **call)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctc_transcripts_equal_transformers(ctc, backend):
    want = reference(ctc, CLIPS)
    assert len(set(want)) > 3 and all(want)  # distinct, non-empty texts: the comparison means something
    asr = batchinfer.pipeline("automatic-speech-recognition", model=str(ctc), accelerator=backend)
    assert [r["text"] for r in asr(CLIPS, batch_size=4)] == want
    assert asr(CLIPS[1]) == {"text": want[1]}
    long = [long_audio(21.3), long_audio(9.9, seed=2)]
    for call in (dict(chunk_length_s=2.0), dict(chunk_length_s=3.0, stride_length_s=[0.6, 0.2])):
        want_long = reference(ctc, long, **call)
        assert len(want_long[0]) > 50
        assert [r["text"] for r in asr(long, **call)] == want_long, call
    whole = reference(ctc, long[1:])  # chunks change the text at their edges, but not much: the stitching works
    chunked = asr(long[1], chunk_length_s=2.0)["text"]
    assert _similar(chunked, whole[0]) > 0.7


def _similar(a: str, b: str) -> float:
    from difflib import SequenceMatcher

    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def test_a_job_transcribes_minutes_of_audio_in_chunks(ctc, tmp_path):
    """Three minutes in 10 s chunks beside short clips (batch_size counts chunks); the same text as transformers
    in chunks; without chunking the long clip is a row error and the others are written."""
    minutes = long_audio(180.0, seed=3)
    audio = [encoded(minutes, RATE, "FLAC"), *(encoded(c, RATE, "WAV", "FLOAT") for c in CLIPS[:3])]
    pq.write_table(pa.table({"id": [0, 1, 2, 3], "audio": pa.array(audio, pa.binary())}), tmp_path / "in.parquet")

    def job(name: str, lines: str) -> str:
        path = tmp_path / f"{name}.toml"
        path.write_text(f"""
[input]
path = "in.parquet"
column = "audio"
on_error = "dead-letter"
[model]
name = {json.dumps(str(ctc))}
task = "automatic-speech-recognition"
backend = "ort"
{lines}
[batching]
batch_size = 8
[output]
path = "{name}"
keep_columns = ["id"]
""")
        return str(path)

    result = CliRunner().invoke(main, ["run", job("chunked", "chunk_length_s = 10")])
    assert result.exit_code == 0, result.output
    got = pl.read_parquet(str(tmp_path / "chunked" / "*.parquet")).sort("id")
    assert pq.read_table(str(tmp_path / "chunked")).schema.field("text").type == pa.string()
    import io

    import soundfile

    samples, rate = soundfile.read(io.BytesIO(audio[0]), dtype="float32")  # FLAC holds 16-bit samples
    assert rate == RATE and len(samples) == len(minutes)
    want = reference(ctc, [samples], chunk_length_s=10)[0]
    assert got["text"][0] == want and len(want) > 400
    short = build_pipeline(ModelSpec(name=str(ctc), task="automatic-speech-recognition", backend="ort",
                                     chunk_length_s=10)).predict(CLIPS[:3], BatchingSpec())
    assert got["text"].to_list()[1:] == short["text"].to_pylist()

    result = CliRunner().invoke(main, ["run", job("whole", "max_duration_s = 120")])
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    assert pl.read_parquet(str(tmp_path / "whole" / "*.parquet"))["id"].sort().to_list() == [1, 2, 3]
    dead = pl.read_parquet(str(tmp_path / "whole" / "_dead_letter" / "*.parquet"))
    assert dead["id"].to_list() == [0]
    assert "180.0 s long" in dead["_error"][0] and "chunk_length_s" in dead["_error"][0]


def test_options_are_checked(ctc):
    from batchinfer.errors import ModelError

    with pytest.raises(ModelError, match="not longer than its strides"):
        build_pipeline(ModelSpec(name=str(ctc), task="automatic-speech-recognition", chunk_length_s=1.0,
                                 stride_length_s=0.6))
    with pytest.raises(ValueError, match="stride_length_s"):
        ModelSpec(name=str(ctc), task="automatic-speech-recognition", chunk_length_s=2.0, stride_length_s=[1, 2, 3])
    with pytest.raises(ModelError, match="applies to Whisper"):
        build_pipeline(ModelSpec(name=str(ctc), task="automatic-speech-recognition", language="fr"))
    with pytest.raises(ModelError, match="\"char\" or \"word\""):
        build_pipeline(ModelSpec(name=str(ctc), task="automatic-speech-recognition", return_timestamps=True))


@pytest.mark.parametrize("backend", BACKENDS)
def test_ctc_timestamps_equal_transformers(ctc, backend):
    """Characters and words with their seconds, whole clips and chunked long audio: transformers' chunks."""
    asr = batchinfer.pipeline("automatic-speech-recognition", model=str(ctc), accelerator=backend)
    for call, values in ((dict(return_timestamps="char"), CLIPS[:4]), (dict(return_timestamps="word"), CLIPS[:4]),
                         (dict(return_timestamps="word", chunk_length_s=2.0), [long_audio(9.9, seed=2)])):
        want = reference_rows(ctc, values, **call)
        assert all(w["chunks"] for w in want)
        assert asr(values, batch_size=4, **call) == want, call
    assert len(want[0]["chunks"]) > 3  # words in the long audio


def reference_rows(path: Path, values, **call):
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(path), device="cpu")
    return [asr(v.copy(), **call) for v in values]


def test_a_job_writes_word_timestamps(ctc, tmp_path):
    """`chunks` is a list of {text, start, end} that polars and pyarrow read back, equal to transformers'."""
    values = [long_audio(6.0, seed=4), *CLIPS[:3]]
    audio = [encoded(v, RATE, "WAV", "FLOAT") for v in values]
    pq.write_table(pa.table({"id": [0, 1, 2, 3], "audio": pa.array(audio, pa.binary())}), tmp_path / "in.parquet")
    (tmp_path / "job.toml").write_text(f"""
[input]
path = "in.parquet"
column = "audio"
[model]
name = {json.dumps(str(ctc))}
task = "asr"
chunk_length_s = 2.0
return_timestamps = "word"
[output]
path = "out"
keep_columns = ["id"]
[output.columns]
chunks = "words"
""")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "job.toml")])
    assert result.exit_code == 0, result.output
    table = pq.read_table(str(tmp_path / "out")).sort_by("id")
    assert table.schema.field("words").type == pa.list_(pa.struct([("text", pa.string()), ("start", pa.float64()),
                                                                   ("end", pa.float64())]))
    frame = pl.read_parquet(str(tmp_path / "out" / "*.parquet")).sort("id")
    want = reference_rows(ctc, values, return_timestamps="word", chunk_length_s=2.0)
    assert frame["text"].to_list() == [w["text"] for w in want]
    got = [[{"text": c["text"], "timestamp": (c["start"], c["end"])} for c in row] for row in frame["words"].to_list()]
    assert got == [w["chunks"] for w in want]
    assert table.column("words").to_pylist() == frame["words"].to_list()
