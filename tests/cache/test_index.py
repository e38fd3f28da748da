"""The in-process vector index: exact search, scopes, expiry, eviction, and the IVF path."""

from __future__ import annotations

import numpy as np

from headway.cache.index import MemoryIndex, Meta

META = Meta("t1", "m")


def unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


async def test_search_orders_filters_and_scopes() -> None:
    index = MemoryIndex()
    await index.add("s1", "a", "alpha", unit([1, 0, 0]), keep_until=100, meta=META)
    await index.add("s1", "b", "beta", unit([1, 1, 0]), keep_until=100, meta=META)
    await index.add("s2", "c", "gamma", unit([1, 0, 0]), keep_until=100, meta=Meta("t2", "m"))
    hits = await index.search("s1", unit([1, 0.1, 0]), k=5, min_similarity=0.5, now=0)
    assert [h.key for h in hits] == ["a", "b"]
    assert hits[0].similarity > hits[1].similarity
    assert await index.search("s1", unit([0, 0, 1]), k=5, min_similarity=0.5, now=0) == []
    assert [
        h.key for h in await index.search("s1", unit([1, 0, 0]), k=5, min_similarity=0.5, now=101)
    ] == []
    await index.remove("s1", "a")
    assert [
        h.key for h in await index.search("s1", unit([1, 0, 0]), k=5, min_similarity=0.5, now=0)
    ] == ["b"]
    assert await index.purge(tenant="t2") == 1
    assert index.size("s2") == 0


async def test_full_scope_evicts_the_entry_expiring_first() -> None:
    index = MemoryIndex(max_per_scope=2)
    await index.add("s", "a", "a", unit([1, 0]), keep_until=50, meta=META)
    await index.add("s", "b", "b", unit([0, 1]), keep_until=100, meta=META)
    await index.add("s", "c", "c", unit([1, 1]), keep_until=100, meta=META)
    keys = {h.key for h in await index.search("s", unit([1, 0.2]), k=5, min_similarity=0, now=0)}
    assert keys == {"b", "c"}


async def test_ivf_beyond_the_exact_limit_finds_near_duplicates() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(size=(600, 16)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    index = MemoryIndex(exact_limit=100, nprobe=4)
    for i, v in enumerate(data):
        await index.add("s", f"k{i}", str(i), v, keep_until=10, meta=META)
    found = 0
    for i in range(0, 600, 20):
        query = data[i] + rng.normal(scale=0.01, size=16).astype(np.float32)
        hits = await index.search(
            "s", query / np.linalg.norm(query), k=1, min_similarity=0.9, now=0
        )
        found += bool(hits and hits[0].key == f"k{i}")
    assert found >= 27  # recall >= 90% while probing 4 of 24 lists
