"""The sample text-generation model `sample:dates` (scripts/train_dates.py): jobs/dates.toml runs as shipped
(only the output folder redirected) and turns the held-out dates in words into their ISO form."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from click.testing import CliRunner

from batchinfer.cli import main

ROOT = Path(__file__).resolve().parents[1]
JOB = ROOT / "jobs" / "dates.toml"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dates_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dates") / "out"
    result = CliRunner().invoke(main, ["run", str(JOB), "--no-progress", "--set", f"output.path={out}"])
    assert result.exit_code == 0, result.output
    return out


def test_dates_job_turns_held_out_dates_into_iso(dates_out):
    truth = pl.read_csv(ROOT / "sample_data" / "dates" / "dates.csv")
    frame = pl.read_parquet(str(dates_out / "*.parquet"))
    assert frame.columns == ["id", "text", "iso", "generated_text", "finish_reason", "prompt_tokens",
                             "completion_tokens"]
    assert frame["id"].to_list() == truth["id"].to_list() and frame["text"].to_list() == truth["text"].to_list()
    assert frame.height == 300
    right = frame["generated_text"].str.strip_chars() == frame["iso"].cast(pl.String)
    assert right.mean() >= 0.97, frame.filter(~right).select("text", "iso", "generated_text").to_dicts()
    assert (frame["finish_reason"] == "eos").mean() >= 0.97  # " YYYY-MM-DD", then the end token
    assert frame.filter(right)["completion_tokens"].unique().to_list() == [11]

    table = ds.dataset(str(dates_out)).to_table()  # pyarrow skips _SUCCESS and _batchinfer/
    assert table.num_rows == 300
    assert str(table.schema.field("generated_text").type) == "string"
    assert str(table.schema.field("iso").type) == "date32[day]"  # the CSV's types are inferred
    same = pc.equal(pc.utf8_trim_whitespace(table["generated_text"]), pc.cast(table["iso"], "string"))
    assert pc.mean(same.combine_chunks().cast("int8")).as_py() == right.mean()


def test_dates_model_agrees_with_transformers_generate(dates_out):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from batchinfer.model.ref import resolve_model

    path = resolve_model("sample:dates").path
    assert json.loads((path / "config.json").read_text())["architectures"] == ["GPT2LMHeadModel"]
    assert json.loads((path / "generation_config.json").read_text())["max_new_tokens"] == 12
    tok = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path)).eval()
    frame = pl.read_parquet(str(dates_out / "*.parquet")).head(40)
    for text, got in zip(frame["text"], frame["generated_text"]):
        enc = tok(f"date: {text}\niso:", return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**enc, do_sample=False, max_new_tokens=12)
        assert tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True) == got, text
