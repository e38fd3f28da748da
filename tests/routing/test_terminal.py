"""The terminal inside a Gateway: resolution, the limits stage's controls, breakers shared by
replicas through Redis, cancellation, and stream deadlines handed to providers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from headway.clock import FakeClock
from headway.config.load import load
from headway.context import Call, Principal
from headway.errors import (
    AllAttemptsFailed,
    ModelNotFound,
    PermissionDenied,
    Unavailable,
    UpstreamError,
)
from headway.gateway import Gateway
from headway.providers.base import AttemptContext
from headway.routing.breaker import OPEN
from headway.routing.terminal import Terminal
from headway.types import ChatRequest, Message
from tests.routing.fakes import ANSWER, Act, FakeProvider, drive

CONFIG = """
providers: {p: {kind: sim}}
models:
  a: {provider: p, model: a}
  b: {provider: p, model: b}
routes:
  r:
    chain: [a, b]
    breaker: {consecutive_failures: 2, cooldown_s: 60}
    stream: {ttft_timeout_s: 5, stall_timeout_s: 7}
    attempt_timeout_s: 3
"""


def gateway(clock: FakeClock, a: FakeProvider, b: FakeProvider, extra: str = "") -> Gateway:
    return Gateway(load(text=CONFIG + extra, env={}), clock=clock, providers={"a": a, "b": b})


def call(model: str = "r", **kw: Any) -> Call:
    return Call(ChatRequest(model=model, messages=(Message("user", "hi"),)), **kw)


async def test_routes_and_deployments_resolve_and_record_what_served(
    fake_clock: FakeClock,
) -> None:
    a, b = FakeProvider("a", fake_clock), FakeProvider("b", fake_clock)
    async with gateway(fake_clock, a, b) as gw:
        c = call()
        reply, _ = await drive(fake_clock, gw.chat(call=c))
        assert reply.content == ANSWER
        assert (c.served.route, c.served.deployment, c.served.upstream_model) == ("r", "a", "a")
        direct = call("b")
        await drive(fake_clock, gw.chat(call=direct))
        assert (direct.served.route, direct.served.deployment) == (None, "b")
        with pytest.raises(ModelNotFound):
            await gw.chat(call=call("nope"))
        with pytest.raises(PermissionDenied):
            await gw.chat(call=call(principal=Principal(allowed_models=frozenset({"b"}))))


async def test_skip_deployments_and_upstream_block_from_the_limits_stage(
    fake_clock: FakeClock,
) -> None:
    a, b = FakeProvider("a", fake_clock), FakeProvider("b", fake_clock)
    async with gateway(fake_clock, a, b) as gw:
        c = call()
        c.skip_deployments = frozenset({"a"})
        await drive(fake_clock, gw.chat(call=c))
        assert (a.calls, b.calls, c.served.deployment) == (0, 1, "b")
        blocked = call()
        blocked.upstream_block = Unavailable("limits store down")
        with pytest.raises(Unavailable):
            await gw.chat(call=blocked)
        with pytest.raises(Unavailable):
            async for _ in gw.stream(call=call(upstream_block=Unavailable("down"))):
                pass
        assert (a.calls, b.calls) == (0, 1)


async def test_the_request_deadline_shortens_the_route_default(fake_clock: FakeClock) -> None:
    a = FakeProvider("a", fake_clock, [Act(hang=True)])
    b = FakeProvider("b", fake_clock, [Act(hang=True)])
    async with gateway(fake_clock, a, b) as gw:
        c = call(deadline=fake_clock.monotonic() + 1.5)
        with pytest.raises(AllAttemptsFailed):
            await drive(fake_clock, gw.chat(call=c))
    assert fake_clock.monotonic() == pytest.approx(1.5)
    assert a.contexts[0].deadline == pytest.approx(1.5)


async def test_stream_attempts_get_first_token_and_stall_deadlines(fake_clock: FakeClock) -> None:
    a, b = FakeProvider("a", fake_clock), FakeProvider("b", fake_clock)
    async with gateway(fake_clock, a, b) as gw:

        async def consume() -> None:
            async for _ in gw.stream(call=call()):
                pass

        await drive(fake_clock, consume())
    ctx = a.contexts[0]
    # the attempt timeout (3 s) bounds the first token; the call deadline bounds the stream
    assert (ctx.ttft_timeout, ctx.stall_timeout) == (3.0, 7.0)
    assert ctx.deadline == pytest.approx(600.0)


async def test_a_caller_going_away_cancels_the_upstream_stream(fake_clock: FakeClock) -> None:
    a = FakeProvider("a", fake_clock, [Act(per_token=1.0)])
    b = FakeProvider("b", fake_clock)
    async with gateway(fake_clock, a, b) as gw:
        received = []

        async def consume() -> None:
            async for chunk in gw.stream(call=call()):
                received.append(chunk)

        task = asyncio.ensure_future(consume())
        for _ in range(5):
            await fake_clock.advance(1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert 0 < len(received) < 60 and a.cancelled == 1 and b.calls == 0


async def test_breakers_are_shared_by_replicas_through_redis(
    fake_clock: FakeClock, redis_url: str
) -> None:
    import redis.asyncio as aioredis

    admin = aioredis.from_url(redis_url)
    await admin.flushdb()
    await admin.aclose()
    extra = f"state: {{backend: redis, redis_url: '{redis_url}'}}\n"
    failing = [Act(error=UpstreamError("500"))]
    one_a, one_b = FakeProvider("a", fake_clock, failing), FakeProvider("b", fake_clock)
    two_a, two_b = FakeProvider("a", fake_clock, failing), FakeProvider("b", fake_clock)
    async with (
        gateway(fake_clock, one_a, one_b, extra) as one,
        gateway(fake_clock, two_a, two_b, extra) as two,
    ):
        await drive(fake_clock, one.chat(call=call()))  # replica one sees a failure ...
        await drive(fake_clock, two.chat(call=call()))  # ... replica two another: open
        await fake_clock.advance(1.0)  # past the local cache's staleness bound
        terminal = two.services.extras["routing"]
        assert (await terminal.breakers.state("a")).status == OPEN
        await drive(fake_clock, one.chat(call=call()))
        await drive(fake_clock, two.chat(call=call()))
        assert (one_a.calls, two_a.calls) == (1, 1)  # neither replica sends to `a` any more
        assert one.services.extras["redis"] is not None


def test_the_terminal_builds_chains_once() -> None:
    from headway.routing.terminal import build
    from headway.services import Services

    runtime = load(text=CONFIG, env={})
    a, b = FakeProvider("a", FakeClock()), FakeProvider("b", FakeClock())
    services = Services()
    terminal = build(runtime, {"a": a, "b": b}, services)
    assert isinstance(terminal, Terminal)
    assert set(terminal.chains) == {"r", "a", "b"}
    assert [m.name for m in terminal.chains["r"].members] == ["a", "b"]
    # a rebuilt terminal (config reload) keeps the same shared breakers and latency samples
    again = build(runtime, {"a": a, "b": b}, services)
    assert again.res is terminal.res


def test_rate_limit_headers_reach_the_capacity_view_per_deployment() -> None:
    from headway.routing.terminal import build
    from headway.services import Services

    class Capacity:
        def __init__(self) -> None:
            self.hooked: list[str] = []

        def hook(self, deployment: str) -> Any:
            self.hooked.append(deployment)
            return lambda snap: None

    services = Services()
    capacity = services.extras["limits.capacity"] = Capacity()
    clock = FakeClock()
    a, b = FakeProvider("a", clock), FakeProvider("b", clock)
    terminal = build(load(text=CONFIG, env={}), {"a": a, "b": b}, services)
    chain = terminal.chains["r"]
    assert [m.on_ratelimit is not None for m in chain.members] == [True, True]
    assert sorted(set(capacity.hooked)) == ["a", "b"]
    ctx = chain.attempt_context(AttemptContext("x"), chain.members[1], 0.0)
    assert ctx.on_ratelimit is chain.members[1].on_ratelimit
