"""`headway cache-eval`'s latency measurement: wall and CPU time for every lookup it makes."""

from __future__ import annotations

from headway.cache.embed import LocalEmbedder
from headway.cache.eval import Report, measure_latency
from headway.cache.index import MemoryIndex
from headway.cache.semantic import SemanticCache


async def test_measure_latency_reports_wall_and_cpu_per_lookup() -> None:
    cache = SemanticCache(LocalEmbedder(), MemoryIndex(), threshold=0.85)
    try:
        wall, cpu = await measure_latency(
            cache,
            ["How do I reset my password?", "What is the capital of Peru?"],
            ["how can I reset my password", "capital of Peru?", "Who wrote Hamlet?"],
        )
    finally:
        await cache.embedder.aclose()
    assert len(wall) == len(cpu) == 3
    assert all(w >= 0 for w in wall) and all(c >= 0 for c in cpu)
    report = Report(latency_ms=wall, cpu_ms=cpu)
    assert report.latency()[0] <= report.latency()[1]
    assert report.cpu()[0] <= report.cpu()[1]
