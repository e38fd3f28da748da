"""`headway cache-eval`: hit and false-hit rates per threshold and per kind, and lookup latency.

Everything goes through `SemanticCache.lookup` with the configured embedder, index and guards:
the code path the gateway runs. Each labelled pair gets its own scope (so pairs never answer
each other), is looked up in both directions, and is recorded with its similarity and veto; a
pair counts as hit at threshold t when a direction found the stored query with similarity >= t
and no guard vetoed it.
"""

from __future__ import annotations

import csv
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from headway.cache.embed import Embedder
from headway.cache.guards import Veto, features, same_words
from headway.cache.index import Meta
from headway.cache.normalize import semantic_text
from headway.cache.semantic import SemanticCache

THRESHOLDS = (0.70, 0.75, 0.80, 0.85, 0.90, 0.95)
_META = Meta("eval", "eval")


@dataclass(slots=True)
class PairResult:
    kind: str
    label: int
    similarity: float  # best over the two directions; -1 when never a candidate
    veto: Veto | None  # set when a guard vetoed the best direction
    lexical: bool = False  # same content words: hits down to the lexical floor


@dataclass(slots=True)
class Report:
    pairs: list[PairResult] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    lexical_floor: float = 1.0

    def hit(self, r: PairResult, threshold: float) -> bool:
        if r.veto is not None:
            return False
        return r.similarity >= threshold or (r.lexical and r.similarity >= self.lexical_floor)

    def table(self, threshold: float) -> dict[str, tuple[int, int]]:
        """kind -> (hits, total) at `threshold`, plus `positives` and `negatives` totals."""
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r in self.pairs:
            hit = int(self.hit(r, threshold))
            for name in (r.kind, "positives" if r.label else "negatives"):
                out[name][0] += hit
                out[name][1] += 1
        return {k: (v[0], v[1]) for k, v in out.items()}

    def latency(self) -> tuple[float, float]:
        """Wall-clock p50, p99 in ms."""
        return _p50_p99(self.latency_ms)

    def cpu(self) -> tuple[float, float]:
        """Process CPU p50, p99 in ms."""
        return _p50_p99(self.cpu_ms)


def _p50_p99(values: list[float]) -> tuple[float, float]:
    arr = np.asarray(values)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def read_pairs(path: Path) -> list[tuple[str, str, int, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [
            (r["query_a"], r["query_b"], int(r["label"]), r["kind"]) for r in csv.DictReader(fh)
        ]


async def _direction(
    cache: SemanticCache, scope: str, stored: str, query: str
) -> tuple[float, Veto | None, bool]:
    await cache.add(scope, "k", stored, keep_until=float("inf"), meta=_META)
    found = await cache.lookup(scope, query, now=0.0)
    if found.hit is not None:
        lexical = cache.guards and same_words(features(query), features(stored))
        return found.hit.similarity, None, lexical
    if found.vetoed:
        hit, reason = found.vetoed[0]
        return hit.similarity, reason, False
    if not found.cacheable:
        return 1.0, "followup", False  # never cacheable: a miss at every threshold
    return -1.0, None, False


class Precomputed:
    """Wraps an embedder with vectors computed ahead in batches (several times faster than one
    query at a time); texts it has not seen go to the wrapped embedder."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self._rows: dict[str, np.ndarray] = {}

    async def prepare(self, texts: Sequence[str]) -> None:
        todo = sorted({semantic_text(t) for t in texts} - self._rows.keys())
        if todo:
            vectors = await self.inner.embed(todo)
            self._rows.update(zip(todo, vectors, strict=True))

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        if all(t in self._rows for t in texts):
            return np.stack([self._rows[t] for t in texts])
        return await self.inner.embed(texts)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def eval_pairs(cache: SemanticCache, pairs: Sequence[tuple[str, str, int, str]]) -> Report:
    """`cache.threshold` is ignored: every candidate is recorded and thresholds applied after."""
    if not isinstance(cache.embedder, Precomputed):
        cache.embedder = Precomputed(cache.embedder)
    assert isinstance(cache.embedder, Precomputed)
    await cache.embedder.prepare([t for a, b, _, _ in pairs for t in (a, b)])
    saved, cache.threshold = cache.threshold, -1.0
    report = Report(lexical_floor=cache.lexical_floor if cache.guards else 1.0)
    try:
        for i, (a, b, label, kind) in enumerate(pairs):
            results = [
                await _direction(cache, f"pair{i}.{j}", stored, query)
                for j, (stored, query) in enumerate(((a, b), (b, a)))
            ]
            # Served in production whichever way round it arrives: a hit either way counts.
            allowed = [(sim, lex) for sim, veto, lex in results if veto is None and sim >= 0]
            if allowed:
                sim, lex = max(allowed)
                report.pairs.append(
                    PairResult(kind, label, sim, None, lex or any(x for _, x in allowed))
                )
                continue
            vetoes = [(sim, veto) for sim, veto, _ in results if veto is not None]
            best: tuple[float, Veto | None] = max(vetoes) if vetoes else (-1.0, None)
            report.pairs.append(PairResult(kind, label, best[0], best[1]))
    finally:
        cache.threshold = saved
    return report


async def measure_latency(
    cache: SemanticCache, stored: Sequence[str], queries: Sequence[str]
) -> tuple[list[float], list[float]]:
    """Lookup latency (embed + search + guards) against one scope holding `stored`: wall-clock
    and process CPU ms per lookup. The CPU time covers every thread (the embedding runs on a
    worker) and is the figure that holds on a shared machine, where wall time also counts the
    wait for a core."""
    vectors = await cache.embedder.embed(list(stored))
    for i, (text, vec) in enumerate(zip(stored, vectors, strict=True)):
        await cache.add("latency", f"k{i}", text, keep_until=float("inf"), meta=_META, vector=vec)
    for q in queries[:5]:  # warm-up: first calls pay for thread start and caches
        await cache.lookup("latency", q + " warm", now=0.0)
    wall: list[float] = []
    cpu: list[float] = []
    for q in queries:
        cpu_started, started = time.process_time(), time.perf_counter()
        await cache.lookup("latency", q, now=0.0)
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return wall, cpu


@dataclass(slots=True)
class IntentReport:
    thresholds: dict[float, tuple[int, int, int]]  # threshold -> (queries, hits, false hits)


async def eval_intents(
    cache: SemanticCache, rows: Sequence[tuple[str, str]], *, stored_fraction: float = 0.5
) -> IntentReport:
    """Half the rows (every other one) are cached answers; the rest are asked. A hit whose stored
    query has another intent is a false hit."""
    stored = [r for i, r in enumerate(rows) if i % int(1 / stored_fraction) == 0]
    asked = [r for i, r in enumerate(rows) if i % int(1 / stored_fraction) != 0]
    intent = {text: cat for text, cat in stored}
    if not isinstance(cache.embedder, Precomputed):
        cache.embedder = Precomputed(cache.embedder)
    assert isinstance(cache.embedder, Precomputed)
    await cache.embedder.prepare([t for t, _ in rows])
    for i, (text, _) in enumerate(stored):
        await cache.add("intents", f"k{i}", text, keep_until=float("inf"), meta=_META)
    saved, cache.threshold = cache.threshold, min(THRESHOLDS)
    found: list[tuple[float, bool]] = []
    try:
        for text, cat in asked:
            look = await cache.lookup("intents", text, now=0.0)
            if look.hit is not None:
                found.append((look.hit.similarity, intent.get(look.hit.text) == cat))
    finally:
        cache.threshold = saved
    out = {}
    for t in THRESHOLDS:
        hits = [ok for sim, ok in found if sim >= t]
        out[t] = (len(asked), len(hits), sum(1 for ok in hits if not ok))
    return IntentReport(out)


def read_intents(path: Path, limit: int | None = None) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(fh)]
    if not limit or limit >= len(rows):
        return rows
    step = len(rows) / limit  # an even sample: the file is grouped by intent
    return [rows[int(i * step)] for i in range(limit)]
