"""`headway cache-eval --pairs dev.csv [--intents banking77.csv]`: measure the semantic cache.

Prints hit rates per positive kind, false-hit rates per negative kind for each threshold, and
the lookup latency (embed + search + guards) p50/p99, using the embedder and guards of the
given config (default: the shipped local embedder).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from headway.cache.config import CacheConfig
from headway.cache.eval import (
    THRESHOLDS,
    Report,
    eval_intents,
    eval_pairs,
    measure_latency,
    read_intents,
    read_pairs,
)
from headway.cache.index import MemoryIndex

_POSITIVE = ("paraphrase", "politeness", "typo", "reorder", "contraction", "synonym")


def _cache(cfg: CacheConfig, guards: bool) -> Any:
    from headway.cache.embed import build_embedder
    from headway.cache.semantic import SemanticCache

    sem = cfg.semantic
    return SemanticCache(
        build_embedder(sem.embedder),
        MemoryIndex(),
        threshold=sem.threshold,
        candidates=sem.candidates,
        guards=guards,
        max_chars=sem.max_chars,
        lexical_floor=sem.lexical_floor,
    )


def _pct(hits: int, total: int) -> str:
    return f"{100 * hits / total:5.1f}% ({hits}/{total})" if total else "-"


def print_pairs(report: Report, thresholds: tuple[float, ...], default: float) -> None:
    kinds = sorted({r.kind for r in report.pairs}, key=lambda k: (k not in _POSITIVE, k))
    print("threshold   " + "  ".join(f"{t:>17.2f}" for t in thresholds))
    tables = {t: report.table(t) for t in thresholds}
    for kind in [*kinds, "positives", "negatives"]:
        label = "hit " if kind in _POSITIVE or kind == "positives" else "FALSE hit "
        cells = "  ".join(f"{_pct(*tables[t].get(kind, (0, 0))):>17}" for t in thresholds)
        print(f"{label + kind:<28}{cells}")
    at = report.table(default)
    pos, neg = at["positives"], at["negatives"]
    print(
        f"\nat the configured threshold {default:.2f}: positives hit {_pct(*pos)}, "
        f"false hits {_pct(*neg)}"
    )


async def _run(args: argparse.Namespace) -> int:
    cfg = CacheConfig()
    if args.config:
        from headway.config.load import load

        cfg = load(args.config).file.cache
    thresholds = tuple(args.thresholds) if args.thresholds else THRESHOLDS
    default = args.threshold if args.threshold is not None else cfg.semantic.threshold
    thresholds = tuple(sorted({*thresholds, default}))
    if args.pairs:
        cache = _cache(cfg, not args.no_guards)
        pairs = read_pairs(Path(args.pairs))
        report = await eval_pairs(cache, pairs)
        print(
            f"cachepairs: {len(pairs)} pairs from {args.pairs} (guards {'off' if args.no_guards else 'on'}, embedder {cache.embedder.name})"
        )
        print_pairs(report, thresholds, default)
        report.latency_ms, report.cpu_ms = await measure_latency(
            _cache(cfg, not args.no_guards), [p[0] for p in pairs], [p[1] for p in pairs]
        )
        p50, p99 = report.latency()
        c50, c99 = report.cpu()
        print(
            f"semantic lookup latency over {len(report.latency_ms)} queries: "
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (CPU per lookup: p50 {c50:.2f} ms, p99 {c99:.2f} ms)"
        )
        await cache.embedder.aclose()
    if args.intents:
        cache = _cache(cfg, not args.no_guards)
        rows = read_intents(Path(args.intents), args.limit)
        intents = await eval_intents(cache, rows)
        print(f"\nintents: {len(rows)} rows from {args.intents}; half cached, half asked")
        print("threshold   answered from cache   of which wrong intent")
        for t, (asked, hits, wrong) in intents.thresholds.items():
            print(f"{t:>9.2f}   {_pct(hits, asked):>19}   {_pct(wrong, hits):>21}")
        await cache.embedder.aclose()
    if not args.pairs and not args.intents:
        print("nothing to do: give --pairs and/or --intents")
        return 2
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("cache-eval", help="measure the semantic cache on labelled data")
    p.add_argument("--pairs", help="cachepairs CSV (id,query_a,query_b,label,kind)")
    p.add_argument("--intents", help="Banking77-style CSV (text,category)")
    p.add_argument("--config", help="headway.yaml whose cache section to use")
    p.add_argument("--threshold", type=float, help="the threshold to summarise (default: config)")
    p.add_argument("--thresholds", type=float, nargs="*", help="thresholds to tabulate")
    p.add_argument("--no-guards", action="store_true", help="similarity threshold only")
    p.add_argument("--limit", type=int, help="use only the first N intent rows")
    p.set_defaults(func=lambda args: asyncio.run(_run(args)))
