"""The offline embedder: the tokenizer matches BERT's, and the int8 model matches the published one.

Reference values were computed with sentence-transformers (fp32, torch) on the same model.
"""

from __future__ import annotations

import numpy as np
import pytest

from headway.cache.config import EmbedderConfig
from headway.cache.embed import LocalEmbedder, build_embedder
from headway.cache.embed.minilm import DEFAULT_VOCAB
from headway.cache.embed.wordpiece import WordPiece
from headway.errors import ConfigError


def test_wordpiece_matches_bert_uncased() -> None:
    wp = WordPiece.from_file(DEFAULT_VOCAB)
    assert wp.encode("Héllo, World! C++ isn't 3.14 東京") == [
        101, 7592, 1010, 2088, 999, 1039, 1009, 1009, 3475, 1005, 1056, 1017, 1012, 2403, 1879, 1755, 102
    ]  # fmt: skip
    assert wp.encode("unaffable tokenization") == [101, 14477, 20961, 3468, 19204, 3989, 102]
    assert len(wp.encode("word " * 400)) == 256


async def test_local_embedder_matches_the_published_model() -> None:
    emb = LocalEmbedder()
    try:
        v = await emb.embed(
            [
                "How do I reset my password?",
                "I forgot my password, how can I change it?",
                "What is the capital of Peru?",
            ]
        )
    finally:
        await emb.aclose()
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float(v[0] @ v[1]) == pytest.approx(0.8939, abs=0.01)  # fp32 reference
    assert float(v[0] @ v[2]) == pytest.approx(0.0665, abs=0.01)
    single = emb.embed_sync(["What is the capital of Peru?"])[0]
    assert np.allclose(single, v[2], atol=1e-5)  # padding in a batch changes nothing


def test_embedder_config_errors_name_the_path() -> None:
    with pytest.raises(ConfigError, match=r"cache\.semantic\.embedder"):
        build_embedder(EmbedderConfig(kind="openai"))


async def test_openai_compatible_embedder_against_the_fake_server() -> None:
    from headway.providers.fake import running_fake

    async with running_fake("openai") as fake:
        emb = build_embedder(
            EmbedderConfig(
                kind="openai", base_url=fake.url, model="text-embedding-3-small", api_key="x"
            )
        )
        try:
            v = await emb.embed(["first text", "second text"])
        finally:
            await emb.aclose()
    assert v.shape[0] == 2 and v.shape[1] > 0 and emb.dim == v.shape[1]
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert emb.name == "openai:text-embedding-3-small"


def test_block_products_match_one_product() -> None:
    """The weights are stored in column blocks for speed; the product is the plain x @ w + b."""
    from headway.cache.embed.minilm import _BLOCK, _Dense

    rng = np.random.default_rng(7)
    w = rng.standard_normal((64, 2 * _BLOCK + 5)).astype(np.float32)  # a ragged last block
    b = rng.standard_normal((w.shape[1],)).astype(np.float32)
    dense = _Dense(w, b)
    assert len(dense.blocks) == 3
    for rows in (1, 13, 300):
        x = rng.standard_normal((rows, 64)).astype(np.float32)
        got = dense(x)
        assert got.dtype == np.float32 and got.shape == (rows, w.shape[1])
        assert np.allclose(got, x @ w + b, rtol=1e-5, atol=1e-4)


def test_batch_of_mixed_lengths_matches_one_at_a_time() -> None:
    emb = LocalEmbedder()
    texts = ["hi", "What is the capital of Peru, and how many people live there today?", "ok"]
    batch = emb.embed_sync(texts)
    for i, text in enumerate(texts):
        assert np.allclose(emb.embed_sync([text])[0], batch[i], atol=1e-5)
    assert batch.dtype == np.float32 and np.isfinite(batch).all()
