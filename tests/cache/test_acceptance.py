"""Acceptance on cachepairs dev at default settings, through `SemanticCache.lookup` (the path the
gateway runs): no false hit on negation, number or direction pairs, at most 1% false hits
overall, at least 85% of the positives hit. The data is a copy of shared/data/cachepairs/dev.csv
(hand-written for this project, free to use)."""

from __future__ import annotations

from pathlib import Path

from headway.cache.config import CacheConfig
from headway.cache.eval import eval_pairs, read_pairs
from headway.cache.factory import build_semantic
from headway.config.load import load

DATA = Path(__file__).parent / "data" / "cachepairs_dev.csv"


async def test_cachepairs_dev_at_default_settings() -> None:
    cfg = CacheConfig(enabled=True)
    cache = build_semantic(cfg, load(text="{}", env={}))
    assert cache is not None
    pairs = read_pairs(DATA)
    assert len(pairs) == 240
    report = await eval_pairs(cache, pairs)
    table = report.table(cfg.semantic.threshold)
    for kind in ("negation", "number", "direction"):
        assert table[kind][0] == 0, f"false hits on {kind}: {table[kind]}"
    false_hits, negatives = table["negatives"]
    assert false_hits <= 0.01 * negatives, table
    hits, positives = table["positives"]
    assert hits >= 0.85 * positives, table

    # Without the guards the same threshold serves wrong answers: the guards carry the precision.
    cache.guards = False
    unguarded = await eval_pairs(cache, pairs)  # the vectors computed above are reused
    assert unguarded.table(cfg.semantic.threshold)["negatives"][0] > 20
    await cache.embedder.aclose()
