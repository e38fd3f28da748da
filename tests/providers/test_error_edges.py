"""Upstream failures classified at the provider edge reach the caller in the CALLER's format:
Anthropic 529, Gemini RESOURCE_EXHAUSTED with RetryInfo, a Gemini safety block, a refused key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anthropic
import openai
import pytest

from headway.config.load import load
from headway.gateway import Gateway
from headway.providers.fake import RunningFake, running_fake
from tests.providers.matrix_support import KEY, UPSTREAMS, Upstream
from tests.server.helpers import running

BY_KIND = {u.kind: u for u in UPSTREAMS}


@asynccontextmanager
async def rig(
    upstream: Upstream, tmp_path: Path, *, fake_key: str = KEY
) -> AsyncIterator[tuple[RunningFake, str]]:
    """The gateway always presents `KEY` upstream; a different `fake_key` makes the fake refuse it."""
    async with running_fake(upstream.flavour, api_key=fake_key) as fake:
        config = load(text=upstream.config(fake, tmp_path), env={})
        async with Gateway(config) as gateway, running(gateway) as base:
            yield fake, base


def oai(base: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="caller", max_retries=0)


def ant(base: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base, api_key="caller", max_retries=0)


async def ask_openai(base: str, text: str = "hello") -> None:
    async with oai(base) as c:
        await c.chat.completions.create(model="chat", messages=[{"role": "user", "content": text}])


async def ask_anthropic(base: str, text: str = "hello") -> None:
    async with ant(base) as c:
        await c.messages.create(
            model="chat", max_tokens=50, messages=[{"role": "user", "content": text}]
        )


async def test_anthropic_529_is_overloaded_for_both_callers(tmp_path: Path) -> None:
    async with rig(BY_KIND["anthropic"], tmp_path) as (fake, base):
        await fake.control(error_rate=1.0, error_status=529)
        with pytest.raises(anthropic.OverloadedError) as a:
            await ask_anthropic(base)
        with pytest.raises(openai.InternalServerError) as o:
            await ask_openai(base)
    assert a.value.status_code == 529 and a.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    assert o.value.status_code == 529 and o.value.body["type"] == "server_error"  # type: ignore[index]


async def test_gemini_resource_exhausted_carries_retry_info_to_the_caller(tmp_path: Path) -> None:
    async with rig(BY_KIND["gemini"], tmp_path) as (fake, base):
        await fake.control(rpm=1)
        await ask_openai(base)
        with pytest.raises(openai.RateLimitError) as o:
            await ask_openai(base)
        with pytest.raises(anthropic.RateLimitError) as a:
            await ask_anthropic(base)
    for err in (o.value, a.value):
        assert err.status_code == 429
        assert int(err.response.headers["retry-after"]) >= 1  # from RetryInfo.retryDelay
    assert a.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


async def test_gemini_safety_block_is_a_content_filter_error(tmp_path: Path) -> None:
    async with rig(BY_KIND["gemini"], tmp_path) as (_, base):
        with pytest.raises(openai.BadRequestError) as o:
            await ask_openai(base, "do something sim:block")
        with pytest.raises(anthropic.BadRequestError) as a:
            await ask_anthropic(base, "do something sim:block")
    assert o.value.code == "content_filter"
    assert a.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


@pytest.mark.parametrize("kind", ["anthropic", "gemini", "azure"])
async def test_refused_upstream_key_is_a_gateway_error_not_the_callers(
    tmp_path: Path, kind: str
) -> None:
    async with rig(BY_KIND[kind], tmp_path, fake_key="another-key") as (_, base):
        with pytest.raises(anthropic.APIStatusError) as a:
            await ask_anthropic(base)
        with pytest.raises(openai.APIStatusError) as o:
            await ask_openai(base)
    for err in (a.value, o.value):
        assert err.status_code == 502  # headway's credential, not the caller's: never a 401
        assert err.response.headers["x-should-retry"] == "false"
