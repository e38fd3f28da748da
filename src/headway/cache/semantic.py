"""The semantic lookup: embed the query, search its scope, let the guards veto, pick the best.

Used by the cache stage and by `headway cache-eval`, so the evaluation measures the code path the
gateway runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from headway.cache.embed import Embedder
from headway.cache.guards import Veto, check, features, same_words
from headway.cache.index import Hit, Meta, VectorIndex
from headway.cache.normalize import semantic_text


@dataclass(slots=True)
class Lookup:
    hit: Hit | None
    vector: np.ndarray | None  # reused when the answer is stored after a miss
    vetoed: list[tuple[Hit, Veto]]
    cacheable: bool  # False for follow-ups and over-long queries: never stored semantically


class SemanticCache:
    def __init__(
        self,
        embedder: Embedder,
        index: VectorIndex,
        *,
        threshold: float,
        candidates: int = 5,
        guards: bool = True,
        max_chars: int = 1000,
        lexical_floor: float = 1.0,
    ) -> None:
        self.embedder = embedder
        self.index = index
        self.threshold = threshold
        self.candidates = candidates
        self.guards = guards
        self.max_chars = max_chars
        self.lexical_floor = lexical_floor

    def scope(self, scope_id: str) -> str:
        return f"{self.embedder.name}|{scope_id}"

    def eligible(self, text: str) -> bool:
        return len(text) <= self.max_chars and not (self.guards and features(text).followup)

    async def vector(self, text: str) -> np.ndarray:
        out: np.ndarray = (await self.embedder.embed([semantic_text(text)]))[0]
        return out

    async def lookup(self, scope_id: str, text: str, *, now: float) -> Lookup:
        if not self.eligible(text):
            return Lookup(None, None, [], False)
        vec = await self.vector(text)
        floor = min(self.threshold, self.lexical_floor) if self.guards else self.threshold
        hits = await self.index.search(
            self.scope(scope_id), vec, k=self.candidates, min_similarity=floor, now=now
        )
        vetoed: list[tuple[Hit, Veto]] = []
        if not self.guards:
            return Lookup(hits[0] if hits else None, vec, vetoed, True)
        mine = features(text)
        for hit in hits:
            theirs = features(hit.text)
            reason = check(mine, theirs)
            if reason is not None:
                vetoed.append((hit, reason))
            elif hit.similarity >= self.threshold or same_words(mine, theirs):
                return Lookup(hit, vec, vetoed, True)
        return Lookup(None, vec, vetoed, True)

    async def add(
        self,
        scope_id: str,
        key: str,
        text: str,
        *,
        keep_until: float,
        meta: Meta,
        vector: np.ndarray | None = None,
    ) -> None:
        if not self.eligible(text):
            return
        if vector is None:
            vector = await self.vector(text)
        await self.index.add(
            self.scope(scope_id), key, text, vector, keep_until=keep_until, meta=meta
        )
