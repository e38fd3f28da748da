"""TTL policy (pure): how long an answer may be served, or whether it is stored at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from headway.cache.config import DEFAULT_TTL_S, CacheConfig, RouteCacheConfig
from headway.types import ChatRequest, ChatResponse, FinishReason

Skip = Literal["no-store", "task", "sampled", "length", "n", "disabled"]

#: the finish reasons of a whole answer (looked up once, not per response)
_COMPLETE = (FinishReason.STOP, FinishReason.TOOL_CALLS)


@dataclass(slots=True, frozen=True)
class Decision:
    ttl_s: float  # 0 when not stored
    reason: Skip | None = None

    @property
    def store(self) -> bool:
        return self.ttl_s > 0


class TtlPolicy:
    def __init__(self, cfg: CacheConfig) -> None:
        self._ttl = {**DEFAULT_TTL_S, **cfg.ttl}
        self._default = cfg.default_ttl_s
        self._sampled = cfg.cache_sampled
        self._routes: dict[str, RouteCacheConfig] = dict(cfg.routes)
        self._stored: dict[float, Decision] = {}

    def route(self, model: str) -> RouteCacheConfig | None:
        return self._routes.get(model)

    def cacheable(self, request: ChatRequest, task: str | None) -> Decision:
        """Whether the request may be answered from or stored in the cache at all."""
        route = self._routes.get(request.model)
        if route is not None and route.enabled is False:
            return Decision(0, "disabled")
        if request.n != 1:
            return Decision(0, "n")
        sampled = request.temperature is not None and request.temperature > 0
        allow = route.cache_sampled if route and route.cache_sampled is not None else self._sampled
        if sampled and not allow:
            return Decision(0, "sampled")
        if route is not None and route.ttl_s is not None:
            ttl = route.ttl_s
        elif task is not None:
            ttl = self._ttl.get(task, self._default)
        else:
            ttl = self._default
        if ttl <= 0:
            return Decision(0, "task")
        decision = self._stored.get(ttl)
        if decision is None:  # one per configured TTL: built once, not per call
            decision = self._stored[ttl] = Decision(ttl)
        return decision

    def for_response(self, decision: Decision, response: ChatResponse) -> Decision:
        """A truncated answer is not what a retry would get with a larger budget: not stored."""
        if not decision.ttl_s > 0:  # `store`, without the property's call
            return decision
        if response.finish_reason not in _COMPLETE:
            return Decision(0, "length")
        return decision
