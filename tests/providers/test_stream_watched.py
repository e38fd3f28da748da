"""A chain on the system clock opens an HTTP stream with `HttpProvider.stream_watched`: the chain's
watchdog times every read, and the provider runs no second watchdog for the same limits unless
one of its own can pass first. The caller sees the chain's errors, as before."""

from __future__ import annotations

from typing import Any

import pytest

from headway.clock import SYSTEM_CLOCK, FakeClock
from headway.context import Served
from headway.errors import HeadwayError, UpstreamTimeout
from headway.observe.events import EventBus
from headway.providers import http
from headway.providers.base import AttemptContext
from headway.routing.breakers import Breakers, MemoryBreakerStore
from headway.routing.chain import Chain
from headway.routing.config import RoutePolicyConfig
from headway.routing.policy import Member, Resilience, RoutePolicy
from headway.routing.streaming import _opener
from headway.services import Services
from headway.transport.watchdog import StreamWatchdog
from headway.types import ChatChunk
from tests.providers.openai_helpers import REQUEST, ctx, make
from tests.providers.openai_server import Reply, ScriptedServer, text_stream
from tests.providers.test_self_timed import _Hidden


def _chain(provider: Any, clock: Any = SYSTEM_CLOCK, **policy: Any) -> Chain:
    bus = EventBus()
    res = Resilience(clock, bus, Breakers(MemoryBreakerStore(), clock, bus))
    cfg = RoutePolicyConfig.model_validate(
        {"retry": {"max_attempts": 1}, "recovery": {"enabled": False}, **policy}
    )
    return Chain("route", [Member("m", provider, "gpt")], RoutePolicy.from_config(cfg, 1), res)


async def _drain(chain: Chain) -> tuple[list[ChatChunk], HeadwayError | None]:
    deadline = chain.res.clock.monotonic() + chain.policy.timeout_s
    out: list[ChatChunk] = []
    try:
        async for chunk in chain.stream_with(REQUEST, AttemptContext("req", deadline), Served()):
            out.append(chunk)
    except HeadwayError as exc:
        return out, exc
    return out, None


@pytest.fixture
def watchdogs(monkeypatch: pytest.MonkeyPatch) -> list[StreamWatchdog]:
    """The watchdogs the HTTP provider creates."""
    made: list[StreamWatchdog] = []

    class Counted(StreamWatchdog):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(http, "StreamWatchdog", Counted)
    return made


async def test_only_a_chain_on_the_system_clock_opens_a_watched_stream(
    upstream: ScriptedServer, services: Services, fake_clock: FakeClock
) -> None:
    provider = make(upstream.url, services)
    assert _opener(provider, SYSTEM_CLOCK) == provider.stream_watched
    assert _opener(provider, fake_clock) == provider.stream  # the chain's limits on fake time
    hidden: Any = _Hidden(provider)  # no `stream_watched`
    assert _opener(hidden, SYSTEM_CLOCK) == hidden.stream
    on_fake = make(upstream.url, Services(clock=fake_clock))
    assert _opener(on_fake, SYSTEM_CLOCK) == on_fake.stream


async def test_a_watched_stream_runs_no_watchdog_of_its_own(
    upstream: ScriptedServer, services: Services, watchdogs: list[StreamWatchdog]
) -> None:
    upstream.script(Reply(frames=text_stream("a", "b")), Reply(frames=text_stream("a", "b")))
    provider = make(upstream.url, services)
    chunks, exc = await _drain(_chain(provider))
    assert exc is None and "".join(c.text for c in chunks) == "ab"
    assert watchdogs == []
    plain, _ = await _drain(_chain(_Hidden(provider)))  # the provider's own watchdog too
    assert len(watchdogs) == 1
    assert [(c.text, c.finish_reason, c.usage) for c in chunks] == [
        (c.text, c.finish_reason, c.usage) for c in plain
    ]


@pytest.mark.parametrize(
    ("kw", "own"),
    [
        ({"ttft_timeout": 30.0, "stall_timeout": 30.0}, False),
        ({"ttft_timeout": 30.0, "stall_timeout": None}, False),
        # a stall limit shorter than the first-token limit also counts before the first token
        ({"ttft_timeout": 30.0, "stall_timeout": 5.0}, True),
        ({"ttft_timeout": None, "stall_timeout": 5.0}, True),
    ],
)
async def test_a_watched_stream_keeps_a_watchdog_when_its_limits_can_pass_first(
    upstream: ScriptedServer,
    services: Services,
    watchdogs: list[StreamWatchdog],
    kw: dict[str, Any],
    own: bool,
) -> None:
    upstream.script(Reply(frames=text_stream("a")))
    provider = make(upstream.url, services)
    deadline = SYSTEM_CLOCK.monotonic() + 60
    chunks = [c async for c in provider.stream_watched(REQUEST, ctx(deadline=deadline, **kw))]
    assert "".join(c.text for c in chunks) == "a"
    assert len(watchdogs) == (1 if own else 0)


async def test_its_own_timeout_keeps_a_watchdog(
    upstream: ScriptedServer, services: Services, watchdogs: list[StreamWatchdog]
) -> None:
    upstream.script(Reply(frames=text_stream("a")))
    capped = make(upstream.url, services, timeout_s=10)
    watched_ctx = ctx(deadline=SYSTEM_CLOCK.monotonic() + 60, ttft_timeout=5.0)  # after its cap
    chunks = [c async for c in capped.stream_watched(REQUEST, watched_ctx)]
    assert "".join(c.text for c in chunks) == "a"
    assert len(watchdogs) == 1


async def test_a_stall_after_output_is_the_chains_error(
    upstream: ScriptedServer, services: Services, watchdogs: list[StreamWatchdog]
) -> None:
    upstream.script(Reply(frames=text_stream("a", "b")[:3], hang_after=True))
    chain = _chain(
        make(upstream.url, services), stream={"ttft_timeout_s": 0.1, "stall_timeout_s": 0.1}
    )
    chunks, exc = await _drain(chain)
    assert [c.text for c in chunks] == ["a", "b"]
    assert isinstance(exc, UpstreamTimeout) and str(exc) == "stalled: no chunk for 0.1s"
    assert watchdogs == []


async def test_no_first_token_is_the_chains_error(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(frames=text_stream("a")[:1], hang_after=True))  # only the role
    chain = _chain(
        make(upstream.url, services), stream={"ttft_timeout_s": 0.1, "stall_timeout_s": 0.1}
    )
    chunks, exc = await _drain(chain)
    assert chunks == []
    assert isinstance(exc, UpstreamTimeout) and str(exc).startswith("no first token after")
