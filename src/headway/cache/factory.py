"""Assembling the cache stage from config: backends, embedder, index."""

from __future__ import annotations

from typing import TYPE_CHECKING

from headway.cache.config import CacheConfig
from headway.cache.store import CacheStore, MemoryStore, RedisStore
from headway.config.runtime import RuntimeConfig
from headway.errors import ConfigError
from headway.services import Services

if TYPE_CHECKING:
    from headway.cache.index import VectorIndex
    from headway.cache.semantic import SemanticCache
    from headway.cache.stage import CacheStage

# The semantic tier (embedder, index, numpy: ~16 MB per worker) is imported only when it is
# enabled, so an exact-only or cache-less gateway never loads it.

#: where the live stage is published for the admin API and the degradation ladder
EXTRAS_KEY = "cache"


def build_store(cfg: CacheConfig, runtime: RuntimeConfig, services: Services) -> CacheStore:
    if cfg.backend == "memory":
        return MemoryStore(cfg.max_bytes, services.clock.time)
    url = cfg.redis_url or runtime.file.state.redis_url
    if not url:
        raise ConfigError(
            "cache.redis_url", "backend redis needs cache.redis_url or state.redis_url"
        )
    if url == runtime.file.state.redis_url:
        # the client limits and breakers use, so the SET after a miss leaves in the same
        # socket write as the settlement that follows it (stores/redis.py, `shared`)
        from headway.stores.redis import shared

        return RedisStore(shared(services.extras, url))
    return RedisStore.from_url(url)


def build_index(cfg: CacheConfig, runtime: RuntimeConfig) -> VectorIndex:
    from headway.cache.index import MemoryIndex

    sem = cfg.semantic
    if sem.index == "memory":
        return MemoryIndex(exact_limit=sem.exact_limit, max_per_scope=sem.max_entries_per_scope)
    dsn = sem.postgres_url or runtime.file.ledger.postgres_url
    if not dsn:
        raise ConfigError(
            "cache.semantic.postgres_url", "index pgvector needs a DSN (or ledger.postgres_url)"
        )
    from headway.cache.pgvector import PgVectorIndex

    return PgVectorIndex(dsn)


def build_semantic(cfg: CacheConfig, runtime: RuntimeConfig) -> SemanticCache | None:
    sem = cfg.semantic
    if not sem.enabled:
        return None
    from headway.cache.embed import build_embedder
    from headway.cache.semantic import SemanticCache

    return SemanticCache(
        build_embedder(sem.embedder),
        build_index(cfg, runtime),
        threshold=sem.threshold,
        candidates=sem.candidates,
        guards=sem.guards,
        max_chars=sem.max_chars,
        lexical_floor=sem.lexical_floor,
    )


def build_stage(runtime: RuntimeConfig, services: Services) -> CacheStage | None:
    from headway.cache.stage import CacheStage

    cfg = runtime.file.cache
    if not cfg.enabled:
        services.extras.pop(EXTRAS_KEY, None)
        return None
    previous = services.extras.get(EXTRAS_KEY)
    if isinstance(previous, CacheStage) and previous.cfg == cfg:
        return previous  # a config reload that leaves the cache alone keeps its entries
    stage = CacheStage(
        cfg, build_store(cfg, runtime, services), build_semantic(cfg, runtime), services.clock
    )
    services.extras[EXTRAS_KEY] = stage
    return stage


def cache_of(services: Services) -> CacheStage | None:
    """The live cache stage of a gateway, if caching is on."""
    from headway.cache.stage import CacheStage

    stage = services.extras.get(EXTRAS_KEY)
    return stage if isinstance(stage, CacheStage) else None
