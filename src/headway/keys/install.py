"""Building the key store, service and resolver from config (`install`), once per Services."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headway.clock import Clock
from headway.config.runtime import RuntimeConfig
from headway.config.schema import ConfigFile
from headway.errors import ConfigError
from headway.keys.invalidate import Invalidation, LocalInvalidation
from headway.keys.resolver import StoreKeyResolver
from headway.keys.service import KeyService
from headway.keys.store import KeyStore, MemoryKeyStore
from headway.services import Services

EXTRA = "keys"
RESOLVER_EXTRA = "key_resolver"


def open_key_store(cfg: ConfigFile) -> KeyStore:
    """The configured key store: the ledger's database unless `keys.store` (or the ledger)
    is memory."""
    if cfg.keys.store == "memory" or cfg.ledger.backend == "memory":
        return MemoryKeyStore()
    if cfg.ledger.backend == "postgres":
        if not cfg.ledger.postgres_url:
            raise ConfigError("ledger.postgres_url", "required when ledger.backend is postgres")
        from headway.keys.postgres import PostgresKeyStore

        return PostgresKeyStore(cfg.ledger.postgres_url)
    from headway.keys.sqlite import SqliteKeyStore

    return SqliteKeyStore(cfg.ledger.sqlite_path)


def open_invalidation(cfg: ConfigFile, clock: Clock, redis_client: Any = None) -> Invalidation:
    """Redis pub/sub when state is shared through Redis; otherwise this process only."""
    if cfg.state.backend != "redis":
        return LocalInvalidation()
    owns = redis_client is None
    if redis_client is None:
        if not cfg.state.redis_url:
            raise ConfigError("state.redis_url", "required when state.backend is redis")
        from headway.stores.redis import connect

        redis_client = connect(cfg.state.redis_url)
    from headway.keys.redis_invalidate import RedisInvalidation

    return RedisInvalidation(redis_client, cfg.keys.invalidation_channel, clock, owns_client=owns)


@dataclass(slots=True)
class Keys:
    """Everything about keys one gateway process needs, closed together."""

    store: KeyStore
    invalidation: Invalidation
    service: KeyService
    resolver: StoreKeyResolver

    async def aclose(self) -> None:
        await self.resolver.aclose()
        await self.invalidation.aclose()
        await self.store.aclose()


def build_keys(cfg: ConfigFile, clock: Clock, redis_client: Any = None) -> Keys:
    store = open_key_store(cfg)
    invalidation = open_invalidation(cfg, clock, redis_client)
    resolver = StoreKeyResolver(
        store,
        clock,
        ttl=cfg.keys.cache_ttl_s,
        negative_ttl=cfg.keys.negative_cache_ttl_s,
        max_entries=cfg.keys.cache_max_entries,
        invalidation=invalidation,
    )
    return Keys(store, invalidation, KeyService(store, clock, invalidation), resolver)


def install(runtime: RuntimeConfig, services: Services) -> Keys:
    """The process's `Keys`, built on first call and kept in `services.extras["keys"]`.

    Idempotent, so a config reload keeps the cache and the subscription. The resolver is also
    put in `services.extras["key_resolver"]`, where the server's authenticator finds it. A
    Redis client already in `services.extras["redis"]` is reused for pub/sub."""
    existing = services.extras.get(EXTRA)
    if isinstance(existing, Keys):
        return existing
    keys = build_keys(runtime.file, services.clock, services.extras.get("redis"))
    services.extras[EXTRA] = keys
    # the server's Authenticator looks the resolver up here at call time
    services.extras[RESOLVER_EXTRA] = keys.resolver
    return keys
