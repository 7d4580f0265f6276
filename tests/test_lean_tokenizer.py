"""A cached tokenizer snapshot tokenizes exactly as transformers does, and a job that finds its export and
snapshot cached imports neither transformers nor torch."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from batchinfer.model import resolve_model
from batchinfer.model.cache_dir import TOKENIZERS
from batchinfer.model.tokenizer import LeanTokenizer, load_tokenizer
from tests.conftest import TEXTS, copy_model, minilm_path
from tests.test_cli import job as job_file
from tests.tiny_decoders import tiny_tokenizer

PAIRS = ["is it good?", "a question that is quite a lot longer than the texts it is paired with, surely", "", "ok"]
CALLS = [
    dict(truncation=True, max_length=16, padding=True, return_tensors="np"),
    dict(truncation=True, max_length=64, padding=True, return_tensors="np"),
    dict(truncation="only_first", max_length=24, padding=True, return_tensors="np"),
    dict(truncation=False, padding=True, return_tensors="np"),
    dict(truncation=False, padding=False, return_attention_mask=False, return_token_type_ids=False, verbose=False),
    dict(truncation=True, max_length=8),
]


def _variant(tmp_path, name, **attributes):
    """The MiniLM (BERT) tokenizer with some attributes changed, saved as a model folder's tokenizer."""
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    for key, value in attributes.items():
        setattr(tok, key, value)
    folder = tmp_path / name
    tok.save_pretrained(str(folder))
    (folder / "config.json").write_text("{}")
    return folder


@pytest.fixture
def folders(tmp_path):
    bpe = tmp_path / "bpe"
    tok = tiny_tokenizer(bpe)
    tok.pad_token = tok.eos_token  # as decoder-only classifiers do
    tok.save_pretrained(str(bpe))
    (bpe / "config.json").write_text("{}")
    return {"bert": _variant(tmp_path, "bert"),
            "left": _variant(tmp_path, "left", padding_side="left", truncation_side="left", model_max_length=20),
            "bpe": bpe}


def _same(got, want):
    assert list(got) == list(want)
    for key in want:
        if isinstance(want[key], np.ndarray):
            assert got[key].dtype == np.int64 and want[key].dtype == np.int64
        np.testing.assert_array_equal(np.asarray(got[key], dtype=object), np.asarray(want[key], dtype=object),
                                      err_msg=key)


@pytest.mark.parametrize("kind", ["bert", "left", "bpe"])
def test_snapshot_tokenizes_as_transformers(kind, folders, fresh_cache):
    ref = resolve_model(str(folders[kind]))
    first = load_tokenizer(ref, fresh_cache, lean=True)
    again = load_tokenizer(ref, fresh_cache, lean=True)  # read from the snapshot this time
    assert isinstance(first, LeanTokenizer) and isinstance(again, LeanTokenizer)
    assert again._full is None
    full = AutoTokenizer.from_pretrained(str(folders[kind]))
    for name in ("model_input_names", "padding_side", "truncation_side", "model_max_length", "pad_token_id",
                 "pad_token", "cls_token_id", "eos_token_id", "mask_token"):
        assert getattr(again, name) == getattr(full, name), name
    texts = list(TEXTS)
    for call in CALLS:
        want = full(texts, **call)
        _same(again(texts, **call), want)
        _same(first(texts, **call), want)
        pairs = (texts[:4], PAIRS)
        try:
            want = full(*pairs, **call)
        except Exception as exc:  # a pair whose first text is too short to cut (only_first): ours raises too
            with pytest.raises(type(exc), match="too short"):
                again(*pairs, **call)
        else:
            _same(again(*pairs, **call), want)
    assert again._full is None  # all of it without transformers' tokenizer


def test_too_short_to_truncate_raises_as_transformers(folders, fresh_cache):
    ref = resolve_model(str(folders["bert"]))
    load_tokenizer(ref, fresh_cache, lean=True)
    lean = load_tokenizer(ref, fresh_cache, lean=True)
    full = AutoTokenizer.from_pretrained(str(folders["bert"]))
    call = dict(truncation="only_first", max_length=12, padding=True, return_tensors="np")
    with pytest.raises(Exception, match="too short") as theirs:
        full(["ok"], ["a hypothesis that is longer than twelve tokens by quite some way"], **call)
    with pytest.raises(Exception, match="too short") as ours:
        lean(["ok"], ["a hypothesis that is longer than twelve tokens by quite some way"], **call)
    assert type(ours.value) is type(theirs.value)


def test_other_calls_go_to_transformers(folders, fresh_cache):
    ref = resolve_model(str(folders["bert"]))
    load_tokenizer(ref, fresh_cache, lean=True)
    lean = load_tokenizer(ref, fresh_cache, lean=True)
    full = AutoTokenizer.from_pretrained(str(folders["bert"]))
    assert lean("one text")["input_ids"] == full("one text")["input_ids"]  # not a batch
    offsets = lean(["an offset or two"], return_offsets_mapping=True)["offset_mapping"]
    assert offsets == full(["an offset or two"], return_offsets_mapping=True)["offset_mapping"]
    ids = full(["decode me"])["input_ids"][0]
    assert lean.decode(ids) == full.decode(ids) and len(lean) == len(full)


def test_tasks_that_need_more_get_transformers_tokenizer(folders, fresh_cache):
    ref = resolve_model(str(folders["bert"]))
    assert not isinstance(load_tokenizer(ref, fresh_cache, lean=False), LeanTokenizer)
    assert not (fresh_cache / TOKENIZERS.folder).exists()


def test_broken_snapshot_is_rebuilt(folders, fresh_cache):
    ref = resolve_model(str(folders["bert"]))
    load_tokenizer(ref, fresh_cache, lean=True)
    (snapshot,) = (fresh_cache / TOKENIZERS.folder).iterdir()
    (snapshot / "tokenizer.json").write_text("{not json")  # size and checksum no longer what was built
    lean = load_tokenizer(ref, fresh_cache, lean=True)
    assert lean._full is not None  # loaded anew through transformers
    full = AutoTokenizer.from_pretrained(str(folders["bert"]))
    _same(lean(TEXTS, **CALLS[0]), full(TEXTS, **CALLS[0]))
    assert json.loads((snapshot / "tokenizer.json").read_text())  # written again, whole
    assert isinstance(load_tokenizer(ref, fresh_cache, lean=True), LeanTokenizer)


def test_snapshot_follows_the_model_tokenizer(folders, tmp_path, fresh_cache):
    model = copy_model(folders["bert"], tmp_path / "changed")
    before = load_tokenizer(resolve_model(str(model)), fresh_cache, lean=True)
    config = json.loads((model / "tokenizer_config.json").read_text())
    config["model_max_length"] = 7
    (model / "tokenizer_config.json").write_text(json.dumps(config))
    after = load_tokenizer(resolve_model(str(model)), fresh_cache, lean=True)
    assert before.model_max_length == 512 and after.model_max_length == 7


JOB_PROCESS = """
import sys
from click.testing import CliRunner
from batchinfer.cli import main

result = CliRunner().invoke(main, ["run", sys.argv[1]])
assert result.exit_code == 0, result.output
heavy = sorted(m for m in ("transformers", "torch", "onnx") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


@pytest.mark.parametrize("task", ["text-classification", "feature-extraction"])
def test_cached_job_imports_neither_transformers_nor_torch(task, tiny_classifier, tiny_encoder, tmp_path,
                                                           fresh_cache):
    model = tiny_classifier if task == "text-classification" else tiny_encoder
    pq.write_table(pa.table({"text": TEXTS}), tmp_path / "in.parquet")
    job = job_file(tmp_path, model, input_path="in.parquet", task=task, extra='mode = "overwrite"')  # on ort

    def run() -> str:
        done = subprocess.run([sys.executable, "-c", JOB_PROCESS, str(job)], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout.split("HEAVY=")[1].strip()

    assert "transformers" in run()  # the first run exports the model and snapshots its tokenizer
    first = pq.read_table(tmp_path / "out").to_pylist()
    assert run() == ""
    assert pq.read_table(tmp_path / "out").to_pylist() == first
