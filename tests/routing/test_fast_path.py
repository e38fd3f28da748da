"""The chat fast path (first attempt without a cursor, breakers stepped without awaiting on the
memory store) gives exactly what the general path gives: the same answers, errors, served
fields, events, upstream attempts and breaker states, and falls back to the general path whenever
its conditions do not hold.

Each scenario runs twice on identical setups: once on the memory store (fast path), once on a
store the breakers cannot step synchronously (general path, every step awaited)."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Sequence
from typing import Any

import pytest

from headway.clock import SYSTEM_CLOCK, FakeClock
from headway.context import Served
from headway.errors import (
    AllAttemptsFailed,
    HeadwayError,
    InvalidRequest,
    UpstreamError,
    UpstreamRateLimited,
)
from headway.observe.events import EventBus
from headway.routing.breaker import BreakerState
from headway.routing.breakers import Breakers, MemoryBreakerStore
from headway.routing.chain import Chain
from headway.routing.config import RoutePolicyConfig
from headway.routing.deadline import within
from headway.routing.policy import Member, Resilience, RoutePolicy
from tests.routing.fakes import OK, Act, FakeProvider, drive
from tests.routing.helpers import Recorder, context, request


class AwaitedStore(MemoryBreakerStore):
    """The memory store seen as one that may do I/O: `Breakers` awaits every step."""


Scripts = Sequence[Sequence[Act]]


def _chain(
    clock: FakeClock, scripts: Scripts, store: MemoryBreakerStore, **policy: Any
) -> tuple[Chain, Recorder, list[FakeProvider]]:
    bus = EventBus()
    rec = Recorder(bus)
    breakers = Breakers(store, clock, bus)
    res = Resilience(clock, bus, breakers, random.Random(7))
    providers = [FakeProvider(f"d{i}", clock, acts) for i, acts in enumerate(scripts)]
    members = [Member(p.name, p, p.name) for p in providers]
    cfg = RoutePolicyConfig.model_validate(policy)
    chain = Chain("route", members, RoutePolicy.from_config(cfg, len(members)), res, route="r")
    return chain, rec, providers


def _error(exc: HeadwayError) -> tuple[Any, ...]:
    attempts = getattr(exc, "attempts", None)
    return (type(exc), exc.message, exc.status, exc.retry_after, exc.provider, repr(attempts))


async def _run(
    clock: FakeClock,
    scripts: Scripts,
    store: MemoryBreakerStore,
    calls: int,
    skip: frozenset[str] = frozenset(),
    **policy: Any,
) -> tuple[list[Any], list[Any], list[int], list[BreakerState], Breakers]:
    chain, rec, providers = _chain(clock, scripts, store, **policy)
    outcomes: list[Any] = []
    for _ in range(calls):
        served = Served()
        aw = chain.chat_with(request(), context(clock, chain), served, skip)
        try:
            reply, took = await drive(clock, aw)
            outcome: Any = (reply.content, reply.model, took)
        except HeadwayError as exc:
            outcome = _error(exc)
        outcomes.append((outcome, dataclasses.asdict(served)))
    events = [(e.kind, e.data) for e in rec.events]
    states = [await chain.res.breakers.state(p.name) for p in providers]
    return outcomes, events, [p.calls for p in providers], states, chain.res.breakers


SCENARIOS: dict[str, tuple[Scripts, int, dict[str, Any]]] = {
    "answers": ([[OK]], 3, {}),
    "retried after a 500": ([[Act(error=UpstreamError("boom", upstream_status=500)), OK]], 2, {}),
    "retry-after waited": (
        [[Act(error=UpstreamRateLimited("429", retry_after=2.0)), OK]],
        1,
        {"breaker": {"enabled": False}},
    ),
    "falls back": ([[Act(error=UpstreamError("down", upstream_status=503))], [OK]], 3, {}),
    "every member fails": (
        [
            [Act(error=UpstreamError("a", upstream_status=502))],
            [Act(error=UpstreamError("b", upstream_status=500))],
        ],
        2,
        {},
    ),
    "a caller error is not retried": ([[Act(error=InvalidRequest("bad"))], [OK]], 2, {}),
    "opens the breaker, then skips it": (
        [[Act(error=UpstreamError("down", upstream_status=503))], [OK]],
        6,
        {"breaker": {"consecutive_failures": 2, "cooldown_s": 1000.0}},
    ),
    "half-open probe after the cooldown": (
        [
            [
                Act(error=UpstreamError("x", upstream_status=500)),
                Act(error=UpstreamError("x", upstream_status=500)),
                OK,
            ]
        ],
        4,
        {"breaker": {"consecutive_failures": 1, "cooldown_s": 0.5}, "retry": {"max_attempts": 1}},
    ),
    "times out": ([[Act(hang=True)], [OK]], 2, {"attempt_timeout_s": 3.0}),
    "hedged": ([[Act(latency=5.0)], [OK]], 2, {"hedge": {"enabled": True, "initial_delay_s": 1}}),
    "no breaker": (
        [[Act(error=UpstreamError("boom", upstream_status=500)), OK]],
        2,
        {"breaker": {"enabled": False}},
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_fast_path_matches_the_general_path(name: str) -> None:
    scripts, calls, policy = SCENARIOS[name]
    fast = await _run(FakeClock(), scripts, MemoryBreakerStore(), calls, **policy)
    slow = await _run(FakeClock(), scripts, AwaitedStore(), calls, **policy)
    assert fast[4].sync and not slow[4].sync  # each side took the path it was meant to
    assert fast[:4] == slow[:4]


async def test_fast_path_matches_with_members_to_skip() -> None:
    scripts: Scripts = [[OK], [OK]]
    skip = frozenset({"d0"})
    fast = await _run(FakeClock(), scripts, MemoryBreakerStore(), 2, skip)
    slow = await _run(FakeClock(), scripts, AwaitedStore(), 2, skip)
    assert fast[:4] == slow[:4]
    assert fast[2] == [0, 2]


async def test_fast_path_matches_when_the_deadline_already_passed() -> None:
    errors = []
    for store in (MemoryBreakerStore(), AwaitedStore()):
        clock = FakeClock()
        chain, _, providers = _chain(clock, [[OK]], store)
        ctx = context(clock, chain)
        ctx.deadline = clock.monotonic() - 1.0
        with pytest.raises(AllAttemptsFailed, match="deadline passed") as info:
            await chain.chat_with(request(), ctx, Served())
        assert providers[0].calls == 0
        errors.append(_error(info.value))
    assert errors[0] == errors[1]


async def test_a_cancelled_fast_attempt_leaves_the_breaker_alone(fake_clock: FakeClock) -> None:
    chain, _, providers = _chain(fake_clock, [[Act(hang=True)]], MemoryBreakerStore())
    served = Served()
    task = asyncio.ensure_future(chain.chat_with(request(), context(fake_clock, chain), served))
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert providers[0].cancelled == 1 and served.attempts == 1
    assert await chain.res.breakers.state("d0") == BreakerState()


# ---- within on the system clock: asyncio.timeout_at's semantics with a bare timer --------------


async def test_within_times_out_at_a_passed_deadline() -> None:
    never: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await within(SYSTEM_CLOCK, never, SYSTEM_CLOCK.monotonic() - 1.0)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the timer's cancellation withdrawn


async def test_within_passes_results_and_errors_through() -> None:
    deadline = SYSTEM_CLOCK.monotonic() + 3600.0

    async def answer() -> int:
        await asyncio.sleep(0)
        return 7

    async def fail() -> int:
        raise UpstreamError("boom")

    assert await within(SYSTEM_CLOCK, answer(), deadline) == 7
    with pytest.raises(UpstreamError):
        await within(SYSTEM_CLOCK, fail(), deadline)


async def test_within_lets_a_cancellation_from_elsewhere_through() -> None:
    never: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(within(SYSTEM_CLOCK, never, SYSTEM_CLOCK.monotonic() + 3600.0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert never.cancelled()


async def test_within_swallowed_timeout_is_withdrawn() -> None:
    """`aw` catches the timer's cancellation and answers anyway: the answer stands and the task
    is left with no pending cancellation, as with asyncio.timeout."""
    loop = asyncio.get_running_loop()

    async def stubborn() -> str:
        try:
            await loop.create_future()
        except asyncio.CancelledError:
            return "kept"
        return "unreachable"

    assert await within(SYSTEM_CLOCK, stubborn(), SYSTEM_CLOCK.monotonic() - 1.0) == "kept"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)  # no cancellation left to land here


async def test_every_member_failing_is_one_error_on_both_paths() -> None:
    scripts, calls, policy = SCENARIOS["every member fails"]
    fast = await _run(FakeClock(), scripts, MemoryBreakerStore(), calls, **policy)
    assert fast[0][0][0][0] is AllAttemptsFailed


async def test_an_answered_first_attempt_builds_no_cursor(
    fake_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []
    general = Chain.cursor

    def counting(self: Chain, *args: Any, **kwargs: Any) -> Any:
        built.append(self)
        return general(self, *args, **kwargs)

    monkeypatch.setattr(Chain, "cursor", counting)
    chain, _, _ = _chain(
        fake_clock, [[OK, Act(error=UpstreamError("x")), OK]], MemoryBreakerStore()
    )
    await drive(fake_clock, chain.chat_with(request(), context(fake_clock, chain), Served()))
    assert built == []  # the fast path
    await drive(fake_clock, chain.chat_with(request(), context(fake_clock, chain), Served()))
    assert built == [chain]  # built once the first attempt failed (then re-sent)
