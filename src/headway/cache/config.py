"""Config section `cache`: exact and semantic caching, TTL per task type.

Owned by the cache package; the root schema (headway.config.schema) only references it.

    cache:
      enabled: true
      backend: memory            # or redis (uses state.redis_url unless cache.redis_url is set)
      max_bytes: 16777216        # memory backend: LRU bound, bytes per process (16 MB)
      ttl:                       # seconds per task type; 0 = never cache that task
        classification: 172800
        creative: 0
      default_ttl_s: 3600        # requests without a (known) task type
      max_stale_s: 86400         # expired entries are kept this long for the degradation ladder
      cache_sampled: false       # temperature > 0 is not cached unless a route says so
      routes: {creative-route: {cache_sampled: true}}
      semantic:
        enabled: true
        threshold: 0.85          # cosine similarity in [0, 1]
        embedder: {kind: local}  # local | openai | sentence-transformers
        index: memory            # memory | pgvector
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from headway.config.base import StrictModel

#: Chosen from the ranges in the caching issue (hours): the middle of each range. See
#: docs/caching.md. 0 means never cache.
DEFAULT_TTL_S: dict[str, float] = {
    "classification": 48 * 3600,
    "extraction": 36 * 3600,
    "summarisation": 8 * 3600,
    "summarization": 8 * 3600,
    "code": 3 * 3600,
    "qa": 2 * 3600,
    "factual": 2 * 3600,
    "creative": 0,
}


class EmbedderConfig(StrictModel):
    #: local: the shipped all-MiniLM-L6-v2 (numpy, offline). openai: any OpenAI-compatible
    #: /v1/embeddings endpoint. sentence-transformers: any model it can load locally.
    kind: Literal["local", "openai", "sentence-transformers"] = "local"
    #: local: a `.safetensors` or `.npz` weights file (default: the shipped int8 file)
    path: str | None = None
    #: openai: base URL (".../v1"), model id and key; sentence-transformers: model name or path
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    timeout_s: float = Field(default=5.0, gt=0)


class SemanticConfig(StrictModel):
    enabled: bool = True
    #: cosine similarity in [0, 1] at or above which a stored query may answer a new one
    threshold: float = Field(default=0.85, ge=0.0, le=1.0)
    #: below the threshold, a candidate still hits when its content words are the same up to
    #: spelling, synonyms, filler and order (misspellings lower an embedder's similarity a lot)
    lexical_floor: float = Field(default=0.5, ge=0.0, le=1.0)
    #: nearest entries checked against the guards, best first
    candidates: int = Field(default=5, ge=1, le=100)
    #: only requests with one user message (and optional system prompt) are semantic-cacheable;
    #: multi-turn answers depend on the whole conversation
    single_turn_only: bool = True
    #: the guards (numbers, negations, direction, entities, follow-ups...); off only for
    #: measuring what they add
    guards: bool = True
    embedder: EmbedderConfig = Field(default_factory=EmbedderConfig)
    index: Literal["memory", "pgvector"] = "memory"
    #: pgvector: DSN; defaults to ledger.postgres_url
    postgres_url: str | None = None
    #: memory index: exact search up to this many entries per scope, IVF beyond
    exact_limit: int = Field(default=50_000, ge=1)
    max_entries_per_scope: int = Field(default=200_000, ge=1)
    #: most characters of query text embedded; longer prompts are exact-cache only
    max_chars: int = Field(default=1000, ge=1)


class RouteCacheConfig(StrictModel):
    #: cache answers sampled with temperature > 0 on this route
    cache_sampled: bool | None = None
    enabled: bool | None = None
    semantic: bool | None = None
    ttl_s: float | None = Field(default=None, ge=0)


class CacheConfig(StrictModel):
    enabled: bool = False
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str | None = None
    #: memory backend bound: bytes the entries occupy in each process (answers, keys and
    #: bookkeeping; see cache/store.py). The default keeps a worker with limits, budgets and
    #: a full exact cache within 120 MB RSS (~95 MB without the cache: 131 MB measured with
    #: 32 MB, which a fast machine fills in seconds); raise it for a larger per-process cache
    #: (or use the Redis backend, shared by every worker)
    max_bytes: int = Field(default=16 * 1024 * 1024, gt=0)
    #: largest answer stored, bytes
    max_entry_bytes: int = Field(default=1024 * 1024, gt=0)
    #: seconds per task type (merged over DEFAULT_TTL_S); 0 = never cache
    ttl: dict[str, float] = Field(default_factory=dict)
    default_ttl_s: float = Field(default=3600.0, ge=0)
    max_stale_s: float = Field(default=86400.0, ge=0)
    cache_sampled: bool = False
    #: per route alias (or model name) overrides
    routes: dict[str, RouteCacheConfig] = Field(default_factory=dict)
    #: "tenant" (default, safe) or "global" (opt-in sharing between tenants)
    scope: Literal["tenant", "global"] = "tenant"
    semantic: SemanticConfig = Field(default_factory=SemanticConfig)
