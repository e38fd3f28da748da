"""Deadlines, TTFT and stall limits enforced by HttpProvider.

The limits are tiny (tenths of a second) and the server never answers in time, so each test
ends as soon as the provider's own timer fires; nothing sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from headway.clock import FakeClock
from headway.errors import StreamInterrupted, UpstreamError, UpstreamTimeout
from headway.services import Services
from tests.conftest import free_port
from tests.providers.openai_helpers import REQUEST, collect, collect_until_error, ctx, make
from tests.providers.openai_server import Reply, ScriptedServer, chunk, completion, text_stream


@pytest.fixture
async def services(fake_clock: FakeClock) -> AsyncIterator[Services]:
    s = Services(clock=fake_clock)
    try:
        yield s
    finally:
        await s.aclose()


async def test_chat_deadline_from_the_attempt_context(
    upstream: ScriptedServer, services: Services, fake_clock: FakeClock
) -> None:
    upstream.script(Reply(json=completion("late"), hang=True))
    provider = make(upstream.url, services)
    with pytest.raises(UpstreamTimeout) as info:
        await provider.chat(REQUEST, ctx(deadline=fake_clock.monotonic() + 0.1))
    assert info.value.provider == "up"


async def test_a_passed_deadline_sends_nothing(
    upstream: ScriptedServer, services: Services, fake_clock: FakeClock
) -> None:
    provider = make(upstream.url, services)
    with pytest.raises(UpstreamTimeout):
        await provider.chat(REQUEST, ctx(deadline=fake_clock.monotonic() - 1))
    assert upstream.seen == []


async def test_provider_timeout_caps_a_missing_deadline(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(json=completion("late"), hang=True))
    with pytest.raises(UpstreamTimeout):
        await make(upstream.url, services, timeout_s=0.1).chat(REQUEST, ctx())


async def test_ttft_counts_until_real_output_not_the_role_chunk(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(frames=[chunk({"role": "assistant", "content": ""})], hang_after=True))
    chunks, exc = await collect_until_error(make(upstream.url, services), ttft_timeout=0.1)
    assert chunks == []  # nothing was handed out: a chain may still fall back
    assert isinstance(exc, UpstreamTimeout)
    assert "first token" in str(exc)


async def test_ttft_covers_the_wait_for_headers(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(frames=text_stream("x"), hang=True))
    chunks, exc = await collect_until_error(make(upstream.url, services), ttft_timeout=0.1)
    assert chunks == [] and isinstance(exc, UpstreamTimeout)


async def test_ttft_does_not_apply_after_the_first_token(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(frames=text_stream("a", "b")))
    chunks = await collect(make(upstream.url, services), ttft_timeout=5.0)
    assert [c.text for c in chunks] == ["a", "b", ""]


async def test_stall_after_output_is_an_interrupted_stream(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(frames=text_stream("a", "b")[:3], hang_after=True))
    chunks, exc = await collect_until_error(make(upstream.url, services), stall_timeout=0.1)
    assert [c.text for c in chunks] == ["a", "b"]
    assert isinstance(exc, StreamInterrupted)
    assert "stalled" in str(exc)


async def test_keep_alive_comments_do_not_hide_a_stall(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(frames=text_stream("a")[:2], repeat=b": ping\n\n", gap_s=0.02))
    chunks, exc = await collect_until_error(make(upstream.url, services), stall_timeout=0.15)
    assert [c.text for c in chunks] == ["a"]
    assert isinstance(exc, StreamInterrupted)


async def test_stall_before_any_output_is_a_timeout(
    upstream: ScriptedServer, services: Services
) -> None:
    upstream.script(Reply(frames=[], hang_after=True))
    chunks, exc = await collect_until_error(make(upstream.url, services), stall_timeout=0.1)
    assert chunks == [] and isinstance(exc, UpstreamTimeout)


async def test_stream_deadline(
    upstream: ScriptedServer, services: Services, fake_clock: FakeClock
) -> None:
    upstream.script(Reply(frames=text_stream("a")[:2], hang_after=True))
    deadline = fake_clock.monotonic() + 0.15
    chunks, exc = await collect_until_error(make(upstream.url, services), deadline=deadline)
    assert [c.text for c in chunks] == ["a"]
    assert isinstance(exc, UpstreamTimeout)


async def test_connection_refused_is_an_upstream_error(services: Services) -> None:
    provider = make(f"http://127.0.0.1:{free_port()}/v1", services)
    with pytest.raises(UpstreamError) as info:
        await provider.chat(REQUEST, ctx())
    assert info.value.fallback_eligible
    chunks, exc = await collect_until_error(provider)
    assert chunks == [] and isinstance(exc, UpstreamError)
