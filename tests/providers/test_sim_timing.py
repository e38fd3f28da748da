"""The sim's time behaviour: latency model, pacing, deadlines and provider limits, on a FakeClock."""

from __future__ import annotations

import asyncio
import random
import statistics
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest

from headway.clock import FakeClock
from headway.config.schema import SimSettings
from headway.errors import StreamInterrupted, UpstreamRateLimited, UpstreamTimeout
from headway.providers.sim import LatencyModel, ProviderLimiter, SimEngine, go_duration
from headway.types import ChatChunk, ChatRequest, EmbedRequest, Message

T = TypeVar("T")
FAST: dict[str, Any] = {"latency_p50_ms": 0, "ttft_p50_ms": 0, "ms_per_token": 0}


def engine(clock: FakeClock, **overrides: Any) -> SimEngine:
    return SimEngine(SimSettings(**{**FAST, **overrides}), clock=clock)


def ask(text: str = "hello", **kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=(Message("user", text),), **kw)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def start(aw: Awaitable[T]) -> asyncio.Task[T]:
    async def run() -> T:
        return await aw

    return asyncio.ensure_future(run())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_latency_model_has_the_configured_median_and_tail() -> None:
    model = LatencyModel(300, 3000)
    rng = random.Random(42)
    samples = [model.sample(rng) for _ in range(40_000)]
    p50, p99 = percentile(samples, 0.50), percentile(samples, 0.99)
    assert p50 == pytest.approx(0.300, rel=0.05)
    assert p99 / p50 == pytest.approx(10.0, rel=0.1)
    assert statistics.fmean(samples) > p50  # heavy right tail


def test_latency_model_edge_cases() -> None:
    rng = random.Random(1)
    assert LatencyModel(0, 0).sample(rng) == 0.0
    assert LatencyModel(250, 250).sample(rng) == 0.25
    ttft = LatencyModel(300, 3000).scaled(100)
    assert (ttft.p50_ms, ttft.p99_ms) == (100, 1000)
    same_seed = [LatencyModel(300, 3000).sample(random.Random(5)) for _ in range(2)]
    assert same_seed[0] == same_seed[1]


async def test_zero_latency_answers_without_waiting(fake_clock: FakeClock) -> None:
    e = engine(fake_clock)
    reply = await e.chat(ask())  # would hang forever if it slept on the fake clock
    assert reply.content
    assert [c async for c in e.stream(ask())]
    assert fake_clock.sleepers == 0


async def test_non_streamed_latency_waits_on_the_clock(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, latency_p50_ms=1000, latency_p99_ms=1000)
    task = start(e.chat(ask()))
    await settle()
    await fake_clock.advance(0.999)
    assert not task.done()
    await fake_clock.advance(0.002)
    assert (await task).content


async def test_stream_pacing_is_ttft_then_per_token(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, latency_p50_ms=300, latency_p99_ms=300, ttft_p50_ms=200, ms_per_token=10)
    seen: list[float] = []

    async def consume() -> None:
        async for _ in e.stream(ask("pace sim:tokens=5")):
            seen.append(round(fake_clock.monotonic(), 6))

    task = asyncio.ensure_future(consume())
    await settle()
    for _ in range(60):
        await fake_clock.advance(0.005)
    await task
    assert seen == [0.2, 0.21, 0.22, 0.23, 0.24, 0.24]  # the finish chunk follows the last token


async def test_deadline_turns_a_hang_into_a_timeout(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, hang=True)
    task = start(e.chat(ask(), deadline=fake_clock.monotonic() + 5))
    await settle()
    await fake_clock.advance(4.9)
    assert not task.done()
    await fake_clock.advance(0.2)
    with pytest.raises(UpstreamTimeout):
        await task
    assert e.stats.hangs == 1


async def test_a_hang_without_deadline_lasts_until_cancelled(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, hang=True)
    task = start(e.chat(ask()))
    await settle()
    await fake_clock.advance(3600)
    assert not task.done()
    assert e.stats.in_flight == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert e.stats.in_flight == 0


async def test_ttft_timeout(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, latency_p50_ms=1000, latency_p99_ms=1000, ttft_p50_ms=1000)

    async def first() -> object:
        return await anext(e.stream(ask(), ttft_timeout=0.5))

    task = asyncio.ensure_future(first())
    await settle()
    await fake_clock.advance(0.6)
    with pytest.raises(UpstreamTimeout, match="first token"):
        await task


async def test_stall_then_resume_or_time_out(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, stall_after_tokens=3, stall_s=5)

    async def run(stall_timeout: float | None) -> list[object]:
        return [c async for c in e.stream(ask("sim:tokens=6"), stall_timeout=stall_timeout)]

    resumed = asyncio.ensure_future(run(None))
    await settle()
    await fake_clock.advance(4.9)
    assert not resumed.done()
    await fake_clock.advance(0.2)
    assert len(await resumed) == 7
    timed_out = asyncio.ensure_future(run(2.0))
    await settle()
    await fake_clock.advance(2.1)
    with pytest.raises(StreamInterrupted, match="stalled"):
        await timed_out
    assert e.stats.stalls == 2


async def test_slow_mode_adds_to_the_first_byte(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, slow_ms=500)
    task = start(e.chat(ask()))
    await settle()
    await fake_clock.advance(0.4)
    assert not task.done()
    await fake_clock.advance(0.2)
    assert (await task).content


async def test_rpm_is_enforced_and_refills(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, rpm=2)
    await e.chat(ask())
    await e.chat(ask())
    with pytest.raises(UpstreamRateLimited) as info:
        await e.chat(ask())
    assert info.value.upstream_status == 429
    assert info.value.retry_after == pytest.approx(30.0)
    assert "requests per min (RPM)" in info.value.message
    assert e.stats.rate_limited == 1
    await fake_clock.advance(30)
    await e.chat(ask())


async def test_tpm_charges_prompt_plus_max_tokens_up_front(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, tpm=1000)
    request = ask("hello", max_tokens=400)
    prompt = e.plan(request).input_tokens
    reply = await e.chat(request)
    assert reply.usage.output_tokens < 400  # charged the cap, not the reply
    state = e.limit_state()
    assert state.limit_tokens == 1000
    assert state.remaining_tokens == 1000 - prompt - 400
    await e.chat(request)
    with pytest.raises(UpstreamRateLimited) as info:
        await e.chat(request)
    deficit = (prompt + 400) - (1000 - 2 * (prompt + 400))
    assert info.value.retry_after == pytest.approx(deficit / (1000 / 60))
    assert "tokens per min (TPM)" in info.value.message
    await fake_clock.advance(info.value.retry_after or 0)
    await e.chat(request)


async def test_a_request_larger_than_the_tpm_never_fits(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, tpm=100)
    with pytest.raises(UpstreamRateLimited, match="Request too large") as info:
        await e.chat(ask("hi", max_tokens=500))
    assert info.value.retry_after is None


async def test_streams_and_embeddings_are_limited_too(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, rpm=1)
    assert [c async for c in e.stream(ask())]
    with pytest.raises(UpstreamRateLimited):
        await anext(e.stream(ask()))
    await fake_clock.advance(60)
    await e.embed(EmbedRequest("m", ("x",)))
    with pytest.raises(UpstreamRateLimited):
        await e.embed(EmbedRequest("m", ("x",)))


def test_limiter_state_and_resets() -> None:
    limiter = ProviderLimiter(rpm=60, tpm=6000, now=0.0)
    assert limiter.acquire(600, now=0.0) is None
    state = limiter.state(now=0.0)
    assert (state.remaining_requests, state.remaining_tokens) == (59, 5400)
    assert state.reset_requests_s == pytest.approx(1.0)
    assert state.reset_tokens_s == pytest.approx(6.0)
    assert limiter.state(now=6.0).remaining_tokens == 6000  # continuous refill, capped
    unlimited = ProviderLimiter(None, None, now=0.0)
    assert unlimited.acquire(10**9, now=0.0) is None
    assert unlimited.state(now=0.0).limit_requests is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.012, "12ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (360, "6m0s"),
        (3723.25, "1h2m3.25s"),
    ],
)
def test_go_durations(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


async def test_chunks_from_a_paced_stream_are_chunks(fake_clock: FakeClock) -> None:
    e = engine(fake_clock, ms_per_token=1)
    task = asyncio.ensure_future(_drain(e))
    for _ in range(100):
        await fake_clock.advance(0.001)
    items = await task
    assert all(isinstance(i, ChatChunk) for i in items)
    assert items[-1].finish_reason is not None


async def _drain(e: SimEngine) -> list[ChatChunk]:
    out: list[ChatChunk] = []
    async for item in e.stream(ask("sim:tokens=20")):
        assert isinstance(item, ChatChunk)
        out.append(item)
    return out
