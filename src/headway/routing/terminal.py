"""The innermost handler: resolve the requested model to a chain and send the call through it.

A requested name is a route alias (its configured chain and policy) or a single deployment (a
one-member chain with the default policy, so breakers, deadlines and recovery apply to it too).
Chains are built once per pipeline; the shared `Resilience` (breakers, latency samples) lives in
`services.extras["routing"]` and so survives config reloads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Coroutine, Mapping
from typing import Any

from headway.config.runtime import Deployment, RuntimeConfig
from headway.context import Call
from headway.errors import ConfigError, HeadwayError, ModelNotFound, PermissionDenied
from headway.pipeline import failed_stream
from headway.providers.base import AttemptContext, Provider
from headway.routing.breakers import Breakers, BreakerStore, MemoryBreakerStore
from headway.routing.chain import Chain
from headway.routing.config import RoutePolicyConfig
from headway.routing.deadline import call_deadline
from headway.routing.policy import Member, Resilience, RoutePolicy
from headway.services import Services
from headway.types import ChatChunk, ChatResponse

EXTRA = "routing"
REDIS_EXTRA = "redis"


#: the limits stage's view of provider capacity (headway.limits.capacity.CapacityView)
CAPACITY_EXTRA = "limits.capacity"


def member(dep: Deployment, provider: Provider, capacity: Any = None) -> Member:
    hook = capacity.hook(dep.name) if capacity is not None else None
    return Member(dep.name, provider, dep.model.model, dep.model.max_context_tokens, hook)


class Terminal:
    def __init__(
        self,
        runtime: RuntimeConfig,
        providers: Mapping[str, Provider],
        res: Resilience,
        capacity: Any = None,
    ) -> None:
        """`capacity`: where providers' rate-limit headers go, if anything listens (an object
        with `hook(deployment) -> callback`; the limits stage's capacity view)."""
        self.res = res
        self._public = ", ".join(runtime.public_models)
        self.chains: dict[str, Chain] = {}
        for name, route in runtime.routes.items():
            members = [member(runtime.deployments[n], providers[n], capacity) for n in route.chain]
            policy = RoutePolicy.from_config(route.policy, len(members))
            self.chains[name] = Chain(name, members, policy, res, route=name)
        single = RoutePolicy.from_config(RoutePolicyConfig(), 1)
        for name, dep in runtime.deployments.items():
            if name in providers:
                one = member(dep, providers[name], capacity)
                self.chains[name] = Chain(name, [one], single, res)

    def resolve(self, call: Call) -> Chain:
        model = call.request.model
        chain = self.chains.get(model)
        if chain is None:
            raise ModelNotFound(
                f"The model `{model}` does not exist. Available: {self._public}", param="model"
            )
        allowed = call.principal.allowed_models
        if allowed is not None and model not in allowed:
            raise PermissionDenied(f"this key may not use model `{model}`", param="model")
        return chain

    def _context(self, call: Call, chain: Chain) -> AttemptContext:
        now = self.res.clock.monotonic()
        deadline = call_deadline(now, chain.policy.timeout_s, call.deadline)
        # positional, every field given: keywords to a class cost ~1k instructions each on
        # Python 3.11, and the `extra_headers` default factory another call
        return AttemptContext(call.request_id, deadline, None, None, None, {})

    def _open(self, call: Call) -> tuple[Chain, AttemptContext]:
        chain = self.resolve(call)
        call.served.route = chain.route
        if call.upstream_block is not None:
            raise call.upstream_block  # the limits stage could not account for an upstream call
        return chain, self._context(call, chain)

    def chat(self, call: Call) -> Coroutine[Any, Any, ChatResponse]:
        # The chain's coroutine itself, not one wrapping it: a frame fewer per call. An unknown
        # model raises here, inside the caller's `await terminal.chat(call)` all the same.
        chain, ctx = self._open(call)
        return chain.chat_with(call.request, ctx, call.served, call.skip_deployments)

    def stream(self, call: Call) -> AsyncIterator[ChatChunk]:
        """The chain's own stream, not a generator relaying it: a layer fewer for every chunk
        (closing it still cancels upstream at once). An unknown model or a blocked call
        raises at the first `anext`, as from a generator."""
        try:
            chain, ctx = self._open(call)
        except HeadwayError as exc:
            return failed_stream(exc)
        return chain.stream_with(call.request, ctx, call.served, call.skip_deployments)


def redis_client(runtime: RuntimeConfig, services: Services) -> Any:
    """The one shared Redis client (`services.extras["redis"]`), created when absent."""
    url = runtime.file.state.redis_url
    if not url and REDIS_EXTRA not in services.extras:
        raise ConfigError("state.redis_url", "required when state.backend is redis")
    from headway.stores.redis import shared

    return shared(services.extras, url or "")


def _store(runtime: RuntimeConfig, services: Services) -> BreakerStore:
    if runtime.file.state.backend == "redis":
        from headway.routing.breaker_redis import RedisBreakerStore

        return RedisBreakerStore(redis_client(runtime, services), services.clock)
    return MemoryBreakerStore()


def resilience(runtime: RuntimeConfig, services: Services) -> Resilience:
    """The gateway's shared Resilience, kept across reloads while the state backend is the same."""
    res = services.extras.get(EXTRA)
    backend = runtime.file.state.backend
    if isinstance(res, Resilience) and res.backend == backend:
        return res
    breakers = Breakers(_store(runtime, services), services.clock, services.events)
    res = Resilience(services.clock, services.events, breakers, backend=backend)
    services.extras[EXTRA] = res
    return res


def build(
    runtime: RuntimeConfig, providers: Mapping[str, Provider], services: Services
) -> Terminal:
    capacity = services.extras.get(CAPACITY_EXTRA)
    if capacity is not None and not hasattr(capacity, "hook"):
        capacity = None
    return Terminal(runtime, providers, resilience(runtime, services), capacity)
