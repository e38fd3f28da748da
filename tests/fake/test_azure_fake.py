"""The Azure OpenAI fake, checked with the official `openai` SDK's Azure client (providers.md 3)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest

from headway.providers.fake import RunningFake, running_fake

KEY = "azure-key"
DEPLOYMENT = "gpt4o-prod"


@pytest.fixture
async def fake() -> AsyncIterator[RunningFake]:
    async with running_fake("azure", api_key=KEY) as running:
        yield running


@pytest.fixture
async def client(fake: RunningFake) -> AsyncIterator[openai.AsyncAzureOpenAI]:
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=fake.root_url, api_key=KEY, api_version="2024-10-21", max_retries=0
    ) as c:
        yield c


async def test_chat_and_stream_on_deployment_paths(
    fake: RunningFake, client: openai.AsyncAzureOpenAI
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model=DEPLOYMENT, messages=[{"role": "user", "content": "hi sim:tokens=4"}]
    )
    reply = raw.parse()
    assert reply.choices[0].message.content and reply.usage and reply.usage.completion_tokens == 4
    assert raw.headers["apim-request-id"] == raw.headers["x-request-id"]
    stream = await client.chat.completions.create(
        model=DEPLOYMENT, messages=[{"role": "user", "content": "hi sim:tokens=4"}], stream=True
    )
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert (await fake.stats())["by_endpoint"]["chat.completions"] == 2


async def test_api_version_is_mandatory_and_key_is_api_key_header(fake: RunningFake) -> None:
    url = f"{fake.root_url}/openai/deployments/{DEPLOYMENT}/chat/completions"
    body = {"model": DEPLOYMENT, "messages": [{"role": "user", "content": "x"}]}
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=body, headers={"api-key": KEY}) as resp:
            assert resp.status == 404
        async with s.post(
            url, json=body, params={"api-version": "2024-10-21"}, headers={"api-key": "no"}
        ) as resp:
            assert resp.status == 401
        async with s.post(
            url, json=body, params={"api-version": "2024-10-21"}, headers={"api-key": KEY}
        ) as resp:
            assert resp.status == 200


async def test_429_has_azure_shape(fake: RunningFake, client: openai.AsyncAzureOpenAI) -> None:
    await fake.control(error_rate=1.0, error_status=429, error_retry_after_s=6)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(
            model=DEPLOYMENT, messages=[{"role": "user", "content": "x"}]
        )
    err = info.value
    assert err.code == "429" and err.type is None  # a string code and no type, as Azure sends
    assert isinstance(err.body, dict) and "Please retry after 6 seconds" in err.body["message"]
    assert err.response.headers["retry-after"] == "6"
