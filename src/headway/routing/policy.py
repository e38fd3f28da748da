"""The runtime values a chain is built from: its members, its policy, and what chains share.

Config models (headway.routing.config) are turned into these once, when the pipeline is built;
nothing is read from config per call.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from headway.clock import Clock
from headway.observe.events import EventBus
from headway.providers.base import Provider, RateLimitSnapshot
from headway.routing.breaker import BreakerPolicy
from headway.routing.breakers import Breakers
from headway.routing.config import RoutePolicyConfig
from headway.routing.hedge import HedgePolicy, LatencyWindow
from headway.routing.retry import RetryPolicy


@dataclass(slots=True, frozen=True)
class Member:
    """One deployment in a chain."""

    name: str
    provider: Provider
    #: the provider's model id, reported in `call.served.upstream_model`
    upstream_model: str | None = None
    #: known context window; a context-length error falls over only to a larger one
    max_context: int | None = None
    #: where this deployment's rate-limit headers go (the limits stage's capacity view)
    on_ratelimit: Callable[[RateLimitSnapshot], None] | None = None

    @property
    def prefill(self) -> bool:
        return self.provider.capabilities.prefill


@dataclass(slots=True, frozen=True)
class RoutePolicy:
    timeout_s: float = 600.0
    attempt_timeout_s: float = 120.0
    ttft_timeout_s: float | None = 30.0
    stall_timeout_s: float | None = 30.0
    breaker: BreakerPolicy | None = field(default_factory=BreakerPolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    budget_ratio: float = 0.2
    budget_window_s: float = 10.0
    budget_min_retries: int = 3
    recovery: bool = True
    recovery_attempts: int = 3
    hedge: HedgePolicy | None = None
    route_around_content_filter: bool = False

    @classmethod
    def from_config(cls, cfg: RoutePolicyConfig, members: int) -> RoutePolicy:
        breaker = None
        if cfg.breaker.enabled:
            breaker = BreakerPolicy.from_config(cfg.breaker, probe_lease_s=cfg.attempt_timeout_s)
        return cls(
            timeout_s=cfg.timeout_s,
            attempt_timeout_s=cfg.attempt_timeout_s,
            ttft_timeout_s=cfg.stream.ttft_timeout_s,
            stall_timeout_s=cfg.stream.stall_timeout_s,
            breaker=breaker,
            retry=RetryPolicy.from_config(cfg.retry, members),
            budget_ratio=cfg.retry.budget_ratio,
            budget_window_s=cfg.retry.budget_window_s,
            budget_min_retries=cfg.retry.budget_min_retries,
            recovery=cfg.recovery.enabled,
            recovery_attempts=cfg.recovery.max_attempts,
            hedge=HedgePolicy.from_config(cfg.hedge),
            route_around_content_filter=cfg.route_around_content_filter,
        )


class Resilience:
    """What every chain of a gateway shares: the clock, events, breakers, observed latencies, a
    source of jitter, and the background tasks that release work off the response path. It
    outlives config reloads, so breaker states and latency samples survive them."""

    def __init__(
        self,
        clock: Clock,
        events: EventBus,
        breakers: Breakers,
        rng: random.Random | None = None,
        *,
        backend: str = "memory",
    ) -> None:
        self.clock = clock
        #: the state backend the breakers use ("memory" or "redis")
        self.backend = backend
        self.events = events
        self.breakers = breakers
        self.rng = rng or random.Random()
        self._windows: dict[tuple[str, str], LatencyWindow] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def window(self, kind: str, deployment: str) -> LatencyWindow:
        """Observed latencies of a deployment: kind "ttft" (streams) or "chat" (whole answers)."""
        key = (kind, deployment)
        w = self._windows.get(key)
        if w is None:
            w = self._windows[key] = LatencyWindow()
        return w

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run `coro` in the background (holding a reference so it is not collected)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for background work (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        await self.breakers.aclose()
