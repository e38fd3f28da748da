"""Vector indexes for the semantic cache: a protocol and the in-process implementation.

Entries live in one partition per scope (tenant, model or route, system-prompt hash, tools hash,
embedder): a search never looks outside its partition, so tenants cannot meet. In-process search
is exact (one matrix-vector product) up to `exact_limit` entries per scope, and an inverted file
(k-means lists, probing the nearest few) beyond. The shared backend for many replicas is
PostgreSQL with pgvector (headway.cache.pgvector).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(slots=True, frozen=True)
class Hit:
    key: str  # the exact-cache key holding the answer
    text: str  # the stored query, for the guards
    similarity: float


@dataclass(slots=True, frozen=True)
class Meta:
    tenant: str
    model: str


class VectorIndex(Protocol):
    async def add(
        self, scope: str, key: str, text: str, vector: np.ndarray, *, keep_until: float, meta: Meta
    ) -> None: ...

    async def search(
        self, scope: str, vector: np.ndarray, *, k: int, min_similarity: float, now: float
    ) -> list[Hit]:
        """Up to `k` live entries of `scope` with similarity >= `min_similarity`, best first."""
        ...

    async def remove(self, scope: str, key: str) -> None: ...

    async def purge(self, *, tenant: str | None = None, model: str | None = None) -> int: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _Partition:
    dim: int
    meta: Meta
    vectors: np.ndarray = field(init=False)
    keep: np.ndarray = field(init=False)
    keys: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    where: dict[str, int] = field(default_factory=dict)
    centroids: np.ndarray | None = None
    lists: np.ndarray | None = None  # the IVF list of each row (-1: not yet assigned)
    built_at: int = 0

    def __post_init__(self) -> None:
        self.vectors = np.zeros((16, self.dim), dtype=np.float32)
        self.keep = np.zeros(16, dtype=np.float64)

    @property
    def size(self) -> int:
        return len(self.keys)

    def put(self, key: str, text: str, vector: np.ndarray, keep_until: float) -> None:
        row = self.where.get(key)
        if row is None:
            row = self.size
            if row == len(self.vectors):
                self.vectors = np.concatenate([self.vectors, np.zeros_like(self.vectors)])
                self.keep = np.concatenate([self.keep, np.zeros_like(self.keep)])
                if self.lists is not None:
                    self.lists = np.concatenate([self.lists, np.full(len(self.lists), -1)])
            self.keys.append(key)
            self.texts.append(text)
            self.where[key] = row
        else:
            self.texts[row] = text
        self.vectors[row] = vector
        self.keep[row] = keep_until
        if self.centroids is not None and self.lists is not None:
            self.lists[row] = int(np.argmax(self.centroids @ vector))

    def remove(self, key: str) -> None:
        row = self.where.pop(key, None)
        if row is None:
            return
        last = self.size - 1
        if row != last:  # swap the last row into the hole
            moved = self.keys[last]
            self.keys[row], self.texts[row] = moved, self.texts[last]
            self.vectors[row] = self.vectors[last]
            self.keep[row] = self.keep[last]
            if self.lists is not None:
                self.lists[row] = self.lists[last]
            self.where[moved] = row
        self.keys.pop()
        self.texts.pop()

    def build_ivf(self) -> None:
        """k-means over the live rows; sqrt(n) lists, a few Lloyd iterations (seeded)."""
        n = self.size
        n_lists = max(8, int(np.sqrt(n)))
        rng = np.random.default_rng(0)
        data = self.vectors[:n]
        centroids = data[rng.choice(n, n_lists, replace=False)].copy()
        for _ in range(5):
            assign = np.argmax(data @ centroids.T, axis=1)
            for c in range(n_lists):
                members = data[assign == c]
                if len(members):
                    mean = members.mean(axis=0)
                    centroids[c] = mean / max(float(np.linalg.norm(mean)), 1e-12)
        self.centroids = centroids
        self.lists = np.full(len(self.vectors), -1)
        self.lists[:n] = np.argmax(data @ centroids.T, axis=1)
        self.built_at = n


class MemoryIndex:
    def __init__(
        self, *, exact_limit: int = 50_000, max_per_scope: int = 200_000, nprobe: int = 8
    ) -> None:
        self._parts: dict[str, _Partition] = {}
        self._exact_limit = exact_limit
        self._max = max_per_scope
        self._nprobe = nprobe

    def size(self, scope: str) -> int:
        part = self._parts.get(scope)
        return part.size if part else 0

    async def add(
        self, scope: str, key: str, text: str, vector: np.ndarray, *, keep_until: float, meta: Meta
    ) -> None:
        part = self._parts.get(scope)
        if part is None:
            part = self._parts[scope] = _Partition(len(vector), meta)
        if key not in part.where and part.size >= self._max:
            # Full: the entry that expires first makes room.
            part.remove(part.keys[int(np.argmin(part.keep[: part.size]))])
        part.put(key, text, vector, keep_until)
        if part.size > self._exact_limit and part.size >= 2 * max(part.built_at, 1):
            part.build_ivf()  # rebuilt each time the partition doubles

    async def search(
        self, scope: str, vector: np.ndarray, *, k: int, min_similarity: float, now: float
    ) -> list[Hit]:
        part = self._parts.get(scope)
        if part is None or part.size == 0:
            return []
        n = part.size
        if part.centroids is not None and part.lists is not None and n > self._exact_limit:
            probe = np.argsort(part.centroids @ vector)[-self._nprobe :]
            rows = np.flatnonzero(np.isin(part.lists[:n], probe) | (part.lists[:n] < 0))
            sims = part.vectors[rows] @ vector
        else:
            rows = None
            sims = part.vectors[:n] @ vector
        keep = part.keep[:n] if rows is None else part.keep[rows]
        ok = (sims >= min_similarity) & (keep > now)
        idx = np.flatnonzero(ok)
        if len(idx) > k:
            idx = idx[np.argpartition(-sims[idx], k - 1)[:k]]
        idx = idx[np.argsort(-sims[idx])]
        out = []
        for i in idx:
            row = int(i) if rows is None else int(rows[i])
            out.append(Hit(part.keys[row], part.texts[row], float(sims[i])))
        return out

    async def remove(self, scope: str, key: str) -> None:
        part = self._parts.get(scope)
        if part is not None:
            part.remove(key)

    async def purge(self, *, tenant: str | None = None, model: str | None = None) -> int:
        count = 0
        for scope, part in list(self._parts.items()):
            if (tenant is None or part.meta.tenant == tenant) and (
                model is None or part.meta.model == model
            ):
                count += part.size
                del self._parts[scope]
        return count

    async def aclose(self) -> None:
        self._parts.clear()
