"""Building chains over fake providers for tests."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from headway.clock import FakeClock
from headway.observe.events import Event, EventBus
from headway.providers.base import AttemptContext
from headway.routing.breakers import Breakers, MemoryBreakerStore
from headway.routing.chain import Chain
from headway.routing.config import RoutePolicyConfig
from headway.routing.policy import Member, Resilience, RoutePolicy
from headway.types import ChatRequest, Message
from tests.routing.fakes import FakeProvider


class Recorder:
    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        bus.subscribe(None, self.events.append)

    def kinds(self, prefix: str = "") -> list[str]:
        return [e.kind for e in self.events if e.kind.startswith(prefix)]

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e.kind == kind)


def make_chain(
    clock: FakeClock,
    providers: Sequence[FakeProvider],
    *,
    contexts: Sequence[int | None] | None = None,
    **policy: Any,
) -> tuple[Chain, Recorder]:
    bus = EventBus()
    rec = Recorder(bus)
    res = Resilience(clock, bus, Breakers(MemoryBreakerStore(), clock, bus), random.Random(7))
    cfg = RoutePolicyConfig.model_validate(policy)
    members = [
        Member(p.name, p, p.name, contexts[i] if contexts else None)
        for i, p in enumerate(providers)
    ]
    chain = Chain("route", members, RoutePolicy.from_config(cfg, len(members)), res, route="route")
    return chain, rec


def request(text: str = "hello", *, stream: bool = False) -> ChatRequest:
    return ChatRequest(model="route", messages=(Message("user", text),), stream=stream)


def context(clock: FakeClock, chain: Chain) -> AttemptContext:
    return AttemptContext("req-1", deadline=clock.monotonic() + chain.policy.timeout_s)


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(0.99 * len(ordered) + 0.999999) - 1))]
