"""End to end: the fake OpenAI server upstream, the real server in front, the openai SDK as client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import openai

from headway.config.load import load
from headway.context import Call, Principal
from headway.gateway import Gateway
from headway.providers.fake import RunningFake, running_fake
from headway.types import ChatRequest, Message
from tests.server.helpers import running

QUESTION = "What is the boiling point of water at sea level?"


def config(fake: RunningFake, semantic: bool = True) -> str:
    return f"""
providers:
  fake: {{kind: openai, base_url: "{fake.url}", api_key: x}}
models:
  m: {{provider: fake, model: gpt-4o-mini}}
routes:
  default: {{chain: [m]}}
ledger: {{enabled: false}}
cache: {{enabled: true, semantic: {{enabled: {str(semantic).lower()}}}}}
"""


@asynccontextmanager
async def stack() -> AsyncIterator[tuple[RunningFake, Gateway]]:
    async with running_fake("openai") as fake:
        gw = Gateway(load(text=config(fake), env={}))
        try:
            yield fake, gw
        finally:
            await gw.aclose()


async def upstream_requests(fake: RunningFake) -> int:
    count: int = (await fake.stats())["requests"]
    return count


async def test_repeat_is_an_exact_hit_counted_at_the_fake_server() -> None:
    async with stack() as (fake, gw):
        request = ChatRequest("default", (Message("user", QUESTION),))
        first = Call(request)
        reply = await gw.chat(call=first)
        assert first.served.cache == "miss"
        assert await upstream_requests(fake) == 1
        second = Call(
            ChatRequest(
                "default", (Message("user", "  what is the boiling point of water at sea level"),)
            )
        )
        again = await gw.chat(call=second)
        assert second.served.cache == "exact"
        assert again.content == reply.content
        assert await upstream_requests(fake) == 1


async def test_two_tenants_never_see_each_others_entries() -> None:
    async with stack() as (fake, gw):
        for tenant in ("acme", "globex"):
            c = Call(
                ChatRequest("default", (Message("user", QUESTION),)), principal=Principal(tenant)
            )
            await gw.chat(call=c)
            assert c.served.cache == "miss"
            near = Call(
                ChatRequest(
                    "default",
                    (Message("user", "Hi! What's the boiling point of water at sea level?"),),
                ),
                principal=Principal(tenant + "-other"),
            )
            await gw.chat(call=near)
            assert near.served.cache == "miss"
        assert await upstream_requests(fake) == 4


async def test_stream_replay_through_the_server_with_the_openai_sdk() -> None:
    async with stack() as (fake, gw), running(gw) as base:
        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="sk-test", max_retries=0)
        async with client:
            messages: list[openai.types.chat.ChatCompletionMessageParam] = [
                {"role": "user", "content": QUESTION}
            ]
            raw = await client.chat.completions.with_raw_response.create(
                model="default",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            assert raw.headers["x-headway-cache"] == "miss"
            live = [c async for c in raw.parse()]
            raw2 = await client.chat.completions.with_raw_response.create(
                model="default",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            assert raw2.headers["x-headway-cache"] == "exact"
            replayed = [c async for c in raw2.parse()]
            text = "".join(c.choices[0].delta.content or "" for c in live if c.choices)
            assert text
            assert "".join(c.choices[0].delta.content or "" for c in replayed if c.choices) == text
            finishes = [
                c.choices[0].finish_reason
                for c in replayed
                if c.choices and c.choices[0].finish_reason
            ]
            assert finishes == ["stop"] or finishes == ["length"]
            assert replayed[-1].usage is not None and replayed[-1].usage.completion_tokens > 0
            raw3 = await client.chat.completions.with_raw_response.create(
                model="default",
                messages=[
                    {
                        "role": "user",
                        "content": "Hey, what's the boiling point of water at sea level? Thanks",
                    }
                ],
            )
            assert raw3.headers["x-headway-cache"] in ("exact", "semantic")
            assert raw3.parse().choices[0].message.content == text
        assert await upstream_requests(fake) == 1


async def test_admin_purge_through_the_server() -> None:
    import aiohttp

    from headway.server.routes import MOUNTS

    async with (
        stack() as (fake, gw),
        running(gw, mounts=MOUNTS) as base,
    ):
        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="sk-test", max_retries=0)
        async with client, aiohttp.ClientSession() as session:
            messages: list[openai.types.chat.ChatCompletionMessageParam] = [
                {"role": "user", "content": QUESTION}
            ]
            await client.chat.completions.create(model="default", messages=messages)
            async with session.delete(f"{base}/admin/cache") as resp:
                assert resp.status == 400  # a purge must say what it purges
            async with session.delete(f"{base}/admin/cache?model=default") as resp:
                assert resp.status == 200
                assert (await resp.json())["purged"] == 1
            raw = await client.chat.completions.with_raw_response.create(
                model="default", messages=messages
            )
            assert raw.headers["x-headway-cache"] == "miss"
        assert await upstream_requests(fake) == 2


async def test_anthropic_caller_gets_a_replayed_stream_in_its_own_wire_format() -> None:
    import anthropic

    async with stack() as (fake, gw), running(gw) as base:
        async with anthropic.AsyncAnthropic(base_url=base, api_key="x", max_retries=0) as c:
            texts = []
            for _ in range(2):
                async with c.messages.stream(
                    model="default",
                    max_tokens=200,
                    messages=[{"role": "user", "content": QUESTION}],
                ) as stream:
                    texts.append("".join([t async for t in stream.text_stream]))
                    final = await stream.get_final_message()
                    assert final.stop_reason == "end_turn"
            assert texts[0] and texts[0] == texts[1]
        assert await upstream_requests(fake) == 1
