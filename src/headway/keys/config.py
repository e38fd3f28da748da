"""Config section `keys`: where API keys live and how long replicas may cache them.

Keys live in the ledger's database by default (`ledger.backend`: the SQLite file, or PostgreSQL for
many replicas). Each replica caches resolved keys; a revocation reaches every replica at once over
Redis pub/sub when `state.backend` is redis, and within `cache_ttl_s` at the latest otherwise.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from headway.config.base import StrictModel


class KeysConfig(StrictModel):
    #: "database": the ledger's database; "memory": process-local (library use and tests)
    store: Literal["database", "memory"] = "database"
    #: how long a replica trusts a cached key without asking the database again
    cache_ttl_s: float = Field(default=30.0, gt=0)
    #: how long an unknown token is remembered as unknown (shields the database from floods)
    negative_cache_ttl_s: float = Field(default=2.0, ge=0)
    cache_max_entries: int = Field(default=100_000, gt=0)
    #: Redis pub/sub channel carrying invalidations between replicas
    invalidation_channel: str = "headway:keys:invalidate"
