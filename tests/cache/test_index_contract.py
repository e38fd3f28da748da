"""One contract suite for the semantic indexes, run over the in-process index and pgvector."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest

from headway.cache.index import MemoryIndex, Meta, VectorIndex
from headway.cache.pgvector import PgVectorIndex


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


@pytest.fixture(params=["memory", "pgvector"])
async def index(request: pytest.FixtureRequest) -> AsyncIterator[VectorIndex]:
    if request.param == "memory":
        yield MemoryIndex()
        return
    dsn: str = request.getfixturevalue("pgvector_dsn")
    pg = PgVectorIndex(dsn)
    try:
        yield pg
    finally:
        await pg.purge()
        await pg.aclose()


async def test_scoped_search_best_first_with_expiry(index: VectorIndex) -> None:
    s1, s2 = f"s1-{uuid.uuid4()}", f"s2-{uuid.uuid4()}"
    t1, t2 = Meta("t1", "m"), Meta("t2", "m")
    await index.add(s1, "a", "alpha", unit([1, 0, 0]), keep_until=100, meta=t1)
    await index.add(s1, "b", "beta", unit([1, 1, 0]), keep_until=100, meta=t1)
    await index.add(s2, "c", "gamma", unit([1, 0, 0]), keep_until=100, meta=t2)
    hits = await index.search(s1, unit([1, 0.1, 0]), k=5, min_similarity=0.5, now=0)
    assert [(h.key, h.text) for h in hits] == [("a", "alpha"), ("b", "beta")]
    assert hits[0].similarity == pytest.approx(float(unit([1, 0.1, 0]) @ unit([1, 0, 0])), abs=1e-4)
    assert await index.search(s1, unit([1, 0, 0]), k=5, min_similarity=0.5, now=100) == []
    await index.remove(s1, "a")
    assert [
        h.key for h in await index.search(s1, unit([1, 0, 0]), k=1, min_similarity=0, now=0)
    ] == ["b"]


async def test_overwrite_and_purge(index: VectorIndex) -> None:
    scope = f"s-{uuid.uuid4()}"
    await index.add(scope, "a", "old", unit([1, 0]), keep_until=100, meta=Meta("acme", "m1"))
    await index.add(scope, "a", "new", unit([0, 1]), keep_until=100, meta=Meta("acme", "m1"))
    hits = await index.search(scope, unit([0, 1]), k=5, min_similarity=0.9, now=0)
    assert [h.text for h in hits] == ["new"]
    other = f"o-{uuid.uuid4()}"
    await index.add(other, "b", "b", unit([0, 1]), keep_until=100, meta=Meta("globex", "m2"))
    assert await index.purge(tenant="acme") == 1
    assert await index.search(scope, unit([0, 1]), k=5, min_similarity=0, now=0) == []
    assert len(await index.search(other, unit([0, 1]), k=5, min_similarity=0, now=0)) == 1
    assert await index.purge(model="m2") == 1
