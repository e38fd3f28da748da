"""A chain on the system clock leaves an HTTP attempt's deadline to the provider's transport
(`HttpProvider.chat_bounded`) instead of timing it with a timer of its own (`within`): the
caller, the breaker and the retry decision see the same thing either way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import pytest

from headway.clock import SYSTEM_CLOCK, FakeClock
from headway.errors import HeadwayError, UpstreamTimeout
from headway.observe.events import EventBus
from headway.providers.base import AttemptContext, HttpCall, Provider
from headway.routing.breaker import BreakerState
from headway.routing.breakers import Breakers, MemoryBreakerStore
from headway.routing.chain import Chain
from headway.routing.config import RoutePolicyConfig
from headway.routing.policy import Member, Resilience, RoutePolicy
from headway.services import Services
from headway.transport.http import DeadlineTimeout, Transport
from headway.transport.pool import ConnectTimeout
from headway.types import ChatChunk, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse
from tests.providers.openai_helpers import REQUEST, ctx, make
from tests.providers.openai_server import Reply, ScriptedServer, completion


class _Hidden:
    """The same provider without `chat_bounded`: a chain times its attempts with `within`."""

    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities

    def chat(self, request: ChatRequest, ctx: AttemptContext) -> Awaitable[ChatResponse]:
        return self.inner.chat(request, ctx)

    def stream(self, request: ChatRequest, ctx: AttemptContext) -> AsyncIterator[ChatChunk]:
        return self.inner.stream(request, ctx)

    async def embed(self, request: EmbedRequest, ctx: AttemptContext) -> EmbedResponse:
        return await self.inner.embed(request, ctx)

    async def aclose(self) -> None:
        return None


def _chain(provider: Any, clock: Any = SYSTEM_CLOCK, **policy: Any) -> Chain:
    bus = EventBus()
    res = Resilience(clock, bus, Breakers(MemoryBreakerStore(), clock, bus))
    cfg = RoutePolicyConfig.model_validate({"retry": {"max_attempts": 1}, **policy})
    return Chain("route", [Member("m", provider, "gpt")], RoutePolicy.from_config(cfg, 1), res)


async def _failure(chain: Chain) -> tuple[type[HeadwayError], str, str | None, BreakerState]:
    deadline = chain.res.clock.monotonic() + chain.policy.timeout_s
    with pytest.raises(HeadwayError) as info:
        await chain.chat(REQUEST, AttemptContext("req", deadline=deadline))
    exc = info.value
    return type(exc), str(exc), exc.provider, await chain.res.breakers.state("m")


async def test_only_a_provider_on_the_chains_system_clock_times_itself(
    upstream: ScriptedServer, services: Services, fake_clock: FakeClock
) -> None:
    provider = make(upstream.url, services)
    assert _chain(provider)._self_timed["m"] is not None
    assert _chain(_Hidden(provider))._self_timed["m"] is None
    assert _chain(provider, fake_clock)._self_timed["m"] is None  # FakeClock: `within` drives it
    on_fake = make(upstream.url, Services(clock=fake_clock))
    assert _chain(on_fake)._self_timed["m"] is None


async def test_an_attempt_deadline_fails_the_same_with_and_without_the_chains_timer(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(
        Reply(json=completion("late"), hang=True), Reply(json=completion("late"), hang=True)
    )
    provider = make(upstream.url, services)
    timed = await _failure(_chain(provider, attempt_timeout_s=0.1))
    plain = await _failure(_chain(_Hidden(provider), attempt_timeout_s=0.1))
    assert timed[:3] == plain[:3] == (UpstreamTimeout, "no answer within 0.1s", "m")
    # the same breaker step; the bucket's index is the wall clock's, which may have moved on
    # to the next bucket between the two calls
    counts = [[(n, f) for _, n, f in state.buckets] for state in (timed[3], plain[3])]
    assert counts == [[(1, 1)], [(1, 1)]]
    assert timed[3].consecutive == plain[3].consecutive == 1
    assert timed[3].status == plain[3].status


async def test_the_providers_own_cap_keeps_its_own_error(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(
        Reply(json=completion("late"), hang=True), Reply(json=completion("late"), hang=True)
    )
    provider = make(upstream.url, services, timeout_s=0.1)  # shorter than the attempt timeout
    timed = await _failure(_chain(provider))
    plain = await _failure(_chain(_Hidden(provider)))
    assert timed[:3] == plain[:3]
    assert timed[1] == "upstream did not answer within 0.1s" and timed[2] == "up"


async def test_chat_bounded_raises_timeout_error_where_chat_raises_upstream_timeout(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(
        Reply(json=completion("late"), hang=True), Reply(json=completion("late"), hang=True)
    )
    provider = make(upstream.url, services)
    with pytest.raises(TimeoutError):
        await provider.chat_bounded(REQUEST, ctx(deadline=SYSTEM_CLOCK.monotonic() + 0.1))
    with pytest.raises(UpstreamTimeout) as info:
        await provider.chat(REQUEST, ctx(deadline=SYSTEM_CLOCK.monotonic() + 0.1))
    assert info.value.provider == "up"


async def test_an_answer_in_time_is_the_same_either_way(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(json=completion("hi")), Reply(json=completion("hi")))
    provider = make(upstream.url, services)
    deadline = SYSTEM_CLOCK.monotonic() + 30
    bounded = await provider.chat_bounded(REQUEST, ctx(deadline=deadline))
    plain = await provider.chat(REQUEST, ctx(deadline=deadline))
    assert bounded == plain and bounded.content == "hi"


# ---- the transport says which limit ran out ---------------------------------------------------


async def _hang(*args: Any, **kwargs: Any) -> Any:
    await asyncio.Event().wait()


async def test_a_connect_timeout_is_not_the_callers_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", _hang)
    call = HttpCall("POST", "/chat/completions", {})
    short_connect = Transport(connect_timeout=0.05)
    with pytest.raises(UpstreamTimeout) as info:
        await short_connect.request(call, "http://127.0.0.1:9/v1", {}, timeout=30)
    assert not isinstance(info.value, DeadlineTimeout)
    await short_connect.aclose()
    long_connect = Transport(connect_timeout=30)
    with pytest.raises(DeadlineTimeout):
        await long_connect.request(call, "http://127.0.0.1:9/v1", {}, timeout=0.05)
    await long_connect.aclose()
    assert issubclass(ConnectTimeout, TimeoutError)
