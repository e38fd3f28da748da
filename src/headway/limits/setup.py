"""Assembly helpers for the limits stage: cross-section config checks and the shared store."""

from __future__ import annotations

from headway.budgets.pricing import PriceBook
from headway.config.runtime import RuntimeConfig
from headway.errors import ConfigError
from headway.limits.store import LimitStore, MemoryLimitStore
from headway.services import Services


def check_config(runtime: RuntimeConfig, prices: PriceBook) -> None:
    lim, bud = runtime.file.limits, runtime.file.budgets
    for name in lim.deployments:
        if name not in runtime.deployments:
            raise ConfigError(f"limits.deployments.{name}", f"unknown model {name!r}")
    for name in bud.teams:
        if not name:
            raise ConfigError("budgets.teams", "a team name may not be empty")
    tiers = [
        *bud.key,
        *bud.user,
        *bud.team,
        *bud.global_,
        *(a for v in bud.teams.values() for a in v),
    ]
    usd = any(a.usd is not None for a in tiers) or (
        bud.per_request is not None and bud.per_request.usd is not None
    )
    if bud.enabled and usd:
        for name in prices.unpriced():
            if not runtime.deployments[name].model.embeddings:
                raise ConfigError(
                    f"models.{name}.input_price",
                    f"no price is known for model {runtime.deployments[name].model.model!r}; "
                    "dollar budgets need one (set input_price and output_price)",
                )


def shared_store(runtime: RuntimeConfig, services: Services) -> LimitStore:
    existing = services.extras.get("limits.store")
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    state = runtime.file.state
    store: LimitStore
    if state.backend == "redis":
        if not state.redis_url and "redis" not in services.extras:
            raise ConfigError("state.redis_url", "required when state.backend is redis")
        from headway.limits.redis_store import RedisLimitStore
        from headway.stores.redis import shared

        client = shared(services.extras, state.redis_url or "")

        store = RedisLimitStore(client, prefix=runtime.file.limits.redis_prefix)
    else:
        store = MemoryLimitStore(services.clock)
    services.extras["limits.store"] = store
    return store
