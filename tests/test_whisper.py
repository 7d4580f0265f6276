"""automatic-speech-recognition with a tiny random Whisper: texts and segments identical to transformers'
pipeline on torch, ort and openvino (transformers' defaults: 5 beams; greedy; language and translation;
timestamps; long audio in chunks with strides), a job that writes segments, and what Whisper does not offer."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import batchinfer
from batchinfer.cli import main
from batchinfer.errors import EXIT_ROWS_FAILED, ModelError
from batchinfer.job import ModelSpec
from batchinfer.pipelines import build_pipeline
from tests.tiny_audio import RATE, build_whisper, clips, encoded, tone
from tests.tiny_audio import long_audio as changing_tones

BACKENDS = ["torch", "ort", "openvino"]
WINDOW = 2.0  # the tiny model's window in seconds (a real Whisper's: 30)
CLIPS = [c[: int(1.9 * RATE)] for c in clips(6, seed=2)] + [tone(1.5, freq=f, seed=i) for i, f in
                                                             enumerate((100, 1000, 3000))]
GREEDY = {"num_beams": 1, "max_new_tokens": 12}


@pytest.fixture(scope="module")
def whisper(tmp_path_factory) -> Path:
    return build_whisper(tmp_path_factory.mktemp("whisper") / "model")


long_audio = partial(changing_tones, piece=0.4, top=3000, noise=0.1)  # shorter tones than CTC's: a 2 s window


def reference(path: Path, values, **call):
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(path), device="cpu")
    return [asr(v.copy(), ignore_warning=True, **call) if "chunk_length_s" in call else asr(v.copy(), **call)
            for v in values]


@pytest.mark.parametrize("backend", BACKENDS)
def test_whisper_equals_transformers(whisper, backend):
    asr = batchinfer.pipeline("automatic-speech-recognition", model=str(whisper), accelerator=backend)
    calls = [dict(),  # transformers' pipeline defaults: 5 beams
             dict(generate_kwargs=GREEDY),
             dict(generate_kwargs={**GREEDY, "language": "fr", "task": "translate"}),
             dict(return_timestamps=True, generate_kwargs=GREEDY)]
    for call in calls:
        want = reference(whisper, CLIPS, **call)
        assert len({w["text"] for w in want}) > 3 and all(w["text"] for w in want), call  # distinct, not empty
        assert asr(CLIPS, batch_size=4, **call) == want, call
    assert sum(len(w["chunks"]) for w in want) > len(CLIPS)  # several segments a clip
    long = [long_audio(9.3), long_audio(5.1, seed=2)]
    for call in (dict(chunk_length_s=WINDOW, generate_kwargs=GREEDY),
                 dict(chunk_length_s=WINDOW, stride_length_s=[0.5, 0.3], return_timestamps=True,
                      generate_kwargs=GREEDY)):
        want = reference(whisper, long, **call)
        assert len(want[0]["text"]) > GREEDY["max_new_tokens"]  # more than one chunk gives
        assert asr(long, batch_size=3, **call) == want, call


def test_a_job_writes_segments(whisper, tmp_path):
    """Clips and long audio in chunks, timestamps on: `chunks` holds {text, start, end} segments as transformers'
    pipeline gives them (greedy: a job's default), read back by polars and pyarrow; a long clip without chunking
    is a row error naming the window."""
    values = [long_audio(7.0, seed=5), *CLIPS[:4]]
    audio = [encoded(v, RATE, "WAV", "FLOAT") for v in values]
    pq.write_table(pa.table({"id": list(range(5)), "audio": pa.array(audio, pa.binary())}), tmp_path / "in.parquet")

    def job(name: str, lines: str) -> str:
        path = tmp_path / f"{name}.toml"
        path.write_text(f"""
[input]
path = "in.parquet"
column = "audio"
on_error = "dead-letter"
[model]
name = {json.dumps(str(whisper))}
task = "automatic-speech-recognition"
backend = "openvino"
max_new_tokens = 12
return_timestamps = true
{lines}
[output]
path = "{name}"
keep_columns = ["id"]
""")
        return str(path)

    result = CliRunner().invoke(main, ["run", job("chunked", f"chunk_length_s = {WINDOW}")])
    assert result.exit_code == 0, result.output
    table = pq.read_table(str(tmp_path / "chunked")).sort_by("id")
    assert table.schema.field("chunks").type == pa.list_(pa.struct([("text", pa.string()), ("start", pa.float64()),
                                                                    ("end", pa.float64())]))
    frame = pl.read_parquet(str(tmp_path / "chunked" / "*.parquet")).sort("id")
    want = reference(whisper, values, chunk_length_s=WINDOW, return_timestamps=True, generate_kwargs=GREEDY)
    assert frame["text"].to_list() == [w["text"] for w in want]
    got = [[{"text": c["text"], "timestamp": (c["start"], c["end"])} for c in row] for row in frame["chunks"].to_list()]
    assert got == [w["chunks"] for w in want]
    assert table.column("chunks").to_pylist() == frame["chunks"].to_list()
    api = batchinfer.predict(pl.DataFrame({"audio": audio}), "audio", task="asr", model=str(whisper),
                             backend="ort", max_new_tokens=12, chunk_length_s=WINDOW, return_timestamps=True)
    assert api["text"].to_list() == frame["text"].to_list() and api["chunks"].to_list() == frame["chunks"].to_list()

    result = CliRunner().invoke(main, ["run", job("whole", "")])
    assert result.exit_code == EXIT_ROWS_FAILED, result.output
    assert pl.read_parquet(str(tmp_path / "whole" / "*.parquet"))["id"].sort().to_list() == [1, 2, 3, 4]
    dead = pl.read_parquet(str(tmp_path / "whole" / "_dead_letter" / "*.parquet"))
    assert dead["id"].to_list() == [0]
    assert "7.0 s long" in dead["_error"][0] and "Whisper window" in dead["_error"][0]
    assert "chunk_length_s = 2" in dead["_error"][0]


def test_whisper_options_are_checked(whisper):
    with pytest.raises(ModelError, match="they give segments"):
        build_pipeline(ModelSpec(name=str(whisper), task="asr", return_timestamps="word"))
    with pytest.raises(ModelError, match="do_sample"):
        build_pipeline(ModelSpec(name=str(whisper), task="asr", do_sample=True))
    pipe = build_pipeline(ModelSpec(name=str(whisper), task="asr", backend="ort", max_new_tokens=12))
    assert pipe.task.generates and type(pipe.task).__name__ == "WhisperRecognition"


def test_bf16_is_gated_on_the_jobs_own_audio(whisper, tmp_path):
    """A media task below fp32: the job's first clips, decoded as the units decode them, are transcribed by
    both and compared; below min_agreement nothing is written."""
    from batchinfer.backends.base import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16 (the gate's own tests cover it where it has)")
    audio = [encoded(v, RATE, "FLAC") for v in CLIPS[:5]]
    pq.write_table(pa.table({"audio": pa.array(audio, pa.binary())}), tmp_path / "in.parquet")

    def run(name: str, least: float):
        (tmp_path / f"{name}.toml").write_text(f"""
[input]
path = "in.parquet"
column = "audio"
[model]
name = {json.dumps(str(whisper))}
task = "asr"
backend = "openvino"
precision = "bf16"
min_agreement = {least}
max_new_tokens = 12
[output]
path = "{name}"
""")
        return CliRunner().invoke(main, ["run", str(tmp_path / f"{name}.toml")])

    result = run("loose", 0.0)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if "vs fp32 on the first" in x)
    assert "on the first 5 rows" in line and "share of equal text" in line
    agreement = float(line.rsplit(" ", 1)[1])
    result = run("strict", 1.0)
    if agreement < 1.0:
        assert result.exit_code == ModelError.exit_code and "changes this model's answers" in result.output
        assert not (tmp_path / "strict").exists()
    else:
        assert result.exit_code == 0, result.output
