"""Failure injection, SimControl, counters, and the sim as a Provider / gateway deployment."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from headway.clock import FakeClock
from headway.config.load import load
from headway.config.schema import SimSettings
from headway.errors import (
    InvalidRequest,
    ModelNotFound,
    StreamInterrupted,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from headway.gateway import Gateway
from headway.providers.base import AttemptContext, RateLimitSnapshot
from headway.providers.registry import build_provider
from headway.providers.sim import SimEngine, SimProvider, StreamFault, error_for_status
from headway.services import Services
from headway.types import ChatChunk, ChatRequest, EmbedRequest, Message

FAST: dict[str, Any] = {"latency_p50_ms": 0, "ttft_p50_ms": 0, "ms_per_token": 0}


def engine(clock: FakeClock | None = None, /, **overrides: Any) -> SimEngine:
    settings = SimSettings(**{**FAST, **overrides})
    return SimEngine(settings, clock=clock) if clock else SimEngine(settings)


def ask(text: str = "hello sim:tokens=10", **kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=(Message("user", text),), **kw)


async def stream(e: SimEngine, request: ChatRequest | None = None) -> list[ChatChunk | StreamFault]:
    return [item async for item in e.stream(request or ask())]


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, InvalidRequest),
        (401, UpstreamAuthFailed),
        (404, ModelNotFound),
        (408, UpstreamTimeout),
        (429, UpstreamRateLimited),
        (500, UpstreamError),
        (502, UpstreamError),
        (503, UpstreamOverloaded),
        (504, UpstreamTimeout),
        (529, UpstreamOverloaded),
    ],
)
def test_statuses_are_classified_like_a_real_provider(status: int, cls: type[Exception]) -> None:
    err = error_for_status(status, "boom")
    assert type(err) is cls
    assert err.upstream_status == status


async def test_error_rate_one_always_fails_with_the_configured_status() -> None:
    e = engine(error_rate=1.0, error_status=503)
    with pytest.raises(UpstreamOverloaded) as info:
        await e.chat(ask())
    assert info.value.upstream_status == 503
    with pytest.raises(UpstreamOverloaded):
        await anext(e.stream(ask()))
    assert e.stats.errors_injected == 2


async def test_error_rate_is_seeded_and_roughly_right() -> None:
    async def outcomes(seed: int) -> list[bool]:
        e = engine(error_rate=0.3, seed=seed)
        out = []
        for _ in range(300):
            try:
                await e.chat(ask())
                out.append(True)
            except UpstreamError:
                out.append(False)
        return out

    first, again, other = await outcomes(1), await outcomes(1), await outcomes(2)
    assert first == again
    assert first != other
    assert 0.22 < first.count(False) / 300 < 0.38


async def test_fault_requests_limits_failures_to_the_next_n() -> None:
    e = engine(error_rate=1.0, fault_requests=2)
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await e.chat(ask())
    assert (await e.chat(ask())).content
    e.control.update(error_rate=0.0, fault_requests=1, cut_after_tokens=2)
    assert isinstance((await stream(e))[-1], StreamFault)
    assert isinstance((await stream(e))[-1], ChatChunk)


async def test_outage_windows_follow_the_clock(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, outages=[(10.0, 20.0)])
    await e.chat(ask())
    await fake_clock.advance(10)
    with pytest.raises(UpstreamOverloaded):
        await e.chat(ask())
    await fake_clock.advance(10)
    await e.chat(ask())
    e.control.outage(5)
    with pytest.raises(UpstreamError) as info:
        await e.embed(EmbedRequest("m", ("x",)))
    assert info.value.upstream_status == 503
    await fake_clock.advance(5)
    await e.chat(ask())
    e.control.outage()
    await fake_clock.advance(10_000)
    with pytest.raises(UpstreamOverloaded):
        await e.chat(ask())
    e.control.clear_outages()
    await e.chat(ask())
    assert e.stats.outage_errors == 3


@pytest.mark.parametrize(
    ("setting", "kind", "counter"),
    [
        ("cut_after_tokens", "cut", "cuts"),
        ("malformed_after_tokens", "malformed", "malformed"),
        ("error_after_tokens", "error", "in_band_errors"),
    ],
)
async def test_stream_faults_after_n_tokens(setting: str, kind: str, counter: str) -> None:
    e = engine(**{setting: 4})
    items = await stream(e)
    assert [isinstance(i, ChatChunk) for i in items] == [True] * 4 + [False]
    fault = items[-1]
    assert isinstance(fault, StreamFault) and fault.kind == kind
    assert getattr(e.stats, counter) == 1
    assert e.stats.output_tokens == 4
    assert (await e.chat(ask())).content  # non-streamed calls are not cut


async def test_a_fault_beyond_the_answer_never_happens() -> None:
    items = await stream(engine(cut_after_tokens=50))
    assert isinstance(items[-1], ChatChunk) and items[-1].finish_reason is not None


async def test_prefill_can_be_refused() -> None:
    request = ChatRequest(model="m", messages=(Message("user", "hi"), Message("assistant", "Hel")))
    e = engine(prefill=False)
    with pytest.raises(InvalidRequest) as info:
        await e.chat(request)
    assert info.value.upstream_status == 400
    assert e.stats.prefill_rejected == 1
    e.control.update(prefill=True)
    assert (await e.chat(request)).content


async def test_control_validates_and_resets(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, rpm=1)
    with pytest.raises(ValidationError):
        e.control.update(no_such_setting=1)
    with pytest.raises(ValidationError):
        e.control.update(error_rate=2.0)
    e.control.update(error_rate=1.0, rpm=None)
    assert e.settings.error_rate == 1.0
    with pytest.raises(UpstreamError):
        await e.chat(ask())
    e.reset()
    assert e.settings.error_rate == 0.0 and e.settings.rpm == 1
    assert e.stats.requests == 0
    await e.chat(ask())
    with pytest.raises(UpstreamRateLimited):
        await e.chat(ask())


async def test_counters() -> None:
    e = engine()
    await e.chat(ask())
    await stream(e)
    await e.embed(EmbedRequest("m", ("a", "b")))
    s = e.stats
    assert (s.requests, s.chat_requests, s.stream_requests, s.embed_requests) == (3, 1, 1, 1)
    assert s.output_tokens == 20
    assert s.in_flight == 0 and s.max_concurrent == 1
    assert s.as_dict()["output_tokens"] == 20


# ---- the Provider ------------------------------------------------------------------------------

CONFIG = """
providers:
  sim:
    kind: sim
    sim: {latency_p50_ms: 0, ttft_p50_ms: 0, ms_per_token: 0, rpm: 100, tpm: 100000}
models:
  big: {provider: sim, model: sim-large}
  small: {provider: sim, model: sim-small}
routes:
  default: {chain: [big, small]}
"""


def provider(**changes: Any) -> SimProvider:
    runtime = load(text=CONFIG, env={})
    built = build_provider(runtime.deployments["big"], Services())
    assert isinstance(built, SimProvider)
    if changes:
        built.control.update(**changes)
    return built


async def test_provider_answers_as_its_deployment_and_reports_limits() -> None:
    p = provider()
    assert p.name == "big" and p.capabilities.prefill and p.capabilities.embeddings
    snapshots: list[RateLimitSnapshot] = []
    ctx = AttemptContext(request_id="r1", on_ratelimit=snapshots.append)
    reply = await p.chat(ask(), ctx)
    assert reply.model == "sim-large"
    chunks = [c async for c in p.stream(ask(), ctx)]
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens == 10
    assert (await p.embed(EmbedRequest("e", ("x",)), ctx)).vectors
    assert len(snapshots) == 3
    assert snapshots[-1].limit_requests == 100
    assert snapshots[-1].remaining_requests == 97


async def test_provider_raises_stream_faults() -> None:
    p = provider(cut_after_tokens=3)
    got: list[ChatChunk] = []
    with pytest.raises(StreamInterrupted):
        async for chunk in p.stream(ask(), AttemptContext(request_id="r")):
            got.append(chunk)
    assert len(got) == 3
    p.control.update(cut_after_tokens=None, error_after_tokens=1)
    with pytest.raises(UpstreamError):
        async for _ in p.stream(ask(), AttemptContext(request_id="r")):
            pass
    assert p.stats.in_flight == 0


async def test_provider_honours_the_attempt_deadline(fake_clock: FakeClock) -> None:
    p = SimProvider("d", "m", engine(fake_clock, hang=True))
    ctx = AttemptContext(request_id="r", deadline=fake_clock.monotonic() - 1)
    with pytest.raises(UpstreamTimeout):
        await p.chat(ask(), ctx)


async def test_gateway_serves_from_the_sim_and_falls_back_on_outage() -> None:
    async with Gateway(load(text=CONFIG, env={})) as gw:
        reply = await gw.chat(model="default", messages=[{"role": "user", "content": "hi"}])
        assert reply.model == "sim-large"
        providers = gw._pipeline.providers
        big = providers["big"]
        assert isinstance(big, SimProvider)
        big.control.outage()
        reply = await gw.chat(model="default", messages=[{"role": "user", "content": "hi"}])
        assert reply.model == "sim-small"
