"""The cache stage inside a real Gateway, with a counting stub provider and a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from headway.cache.factory import cache_of
from headway.clock import FakeClock
from headway.config.load import load
from headway.context import CacheDirective, Call, Principal
from headway.errors import StreamInterrupted
from headway.gateway import Gateway
from headway.providers.base import AttemptContext
from headway.types import ChatChunk, ChatRequest, ChatResponse, Message
from tests.stubs import StubProvider

CONFIG = """
providers: {p: {kind: sim}}
models:
  a: {provider: p, model: a}
routes:
  default: {chain: [a]}
cache:
  enabled: true
  max_stale_s: 3600
  ttl: {qa: 600}
  semantic: {enabled: %s}
"""


class Counting(StubProvider):
    """Streams can be cut after `cut_after` chunks to model a broken upstream."""

    cut_after: int | None = None

    async def stream(self, request: ChatRequest, ctx: AttemptContext) -> AsyncIterator[ChatChunk]:
        n = 0
        async for chunk in super().stream(request, ctx):
            if self.cut_after is not None and n >= self.cut_after:
                raise StreamInterrupted("cut")
            n += 1
            yield chunk


def gateway(clock: FakeClock, provider: StubProvider, *, semantic: bool = False) -> Gateway:
    cfg = load(text=CONFIG % ("true" if semantic else "false"), env={})
    return Gateway(cfg, clock=clock, providers={"a": provider})


def call(
    text: str,
    *,
    tenant: str = "t1",
    directive: CacheDirective | None = None,
    task: str | None = "qa",
    **kw: object,
) -> Call:
    request = ChatRequest(model="default", messages=(Message("user", text),), **kw)  # type: ignore[arg-type]
    return Call(request, principal=Principal(tenant=tenant), task=task, cache_directive=directive)


async def ask(gw: Gateway, c: Call) -> ChatResponse:
    return await gw.chat(call=c)


async def test_repeat_is_an_exact_hit_and_skips_the_provider(fake_clock: FakeClock) -> None:
    p = Counting("a")
    async with gateway(fake_clock, p) as gw:
        first = call("What is the capital of Peru?")
        await ask(gw, first)
        assert first.served.cache == "miss" and p.calls == 1
        again = call("what is the capital of peru")
        reply = await ask(gw, again)
        assert again.served.cache == "exact" and p.calls == 1
        assert reply.content == "a: What is the capital of Peru?"


async def test_ttl_expiry_and_stale_ok(fake_clock: FakeClock) -> None:
    p = Counting("a")
    async with gateway(fake_clock, p) as gw:
        await ask(gw, call("q1"))
        await fake_clock.advance(601)
        stale = call("q1", directive="stale-ok")
        await ask(gw, stale)
        assert stale.served.cache == "stale" and stale.served.cache_age_s == pytest.approx(601)
        assert p.calls == 1
        fresh = call("q1")
        await ask(gw, fresh)
        assert fresh.served.cache == "miss" and p.calls == 2
        stage = cache_of(gw.services)
        assert stage is not None
        kept = await stage.lookup_stale(call("q1"))
        assert kept is not None and kept[1] == 0


async def test_directives_no_store_and_no_cache(fake_clock: FakeClock) -> None:
    p = Counting("a")
    async with gateway(fake_clock, p) as gw:
        await ask(gw, call("q", directive="no-store"))
        await ask(gw, call("q"))
        assert p.calls == 2  # no-store wrote nothing
        refresh = call("q", directive="no-cache")
        await ask(gw, refresh)
        assert refresh.served.cache == "miss" and p.calls == 3
        hit = call("q")
        await ask(gw, hit)
        assert hit.served.cache == "exact" and p.calls == 3


async def test_sampled_and_creative_calls_are_not_cached(fake_clock: FakeClock) -> None:
    p = Counting("a")
    async with gateway(fake_clock, p) as gw:
        for _ in range(2):
            await ask(gw, call("poem", temperature=0.9))
            await ask(gw, call("story", task="creative"))
        assert p.calls == 4


async def test_tenants_never_share_entries(fake_clock: FakeClock) -> None:
    p = Counting("a")
    async with gateway(fake_clock, p, semantic=True) as gw:
        await ask(gw, call("How do I reset my password?", tenant="acme"))
        other = call("How do I reset my password?", tenant="globex")
        await ask(gw, other)
        assert other.served.cache == "miss"
        near = call("how can I reset my password", tenant="globex")
        await ask(gw, near)
        assert near.served.cache in ("exact", "semantic")  # globex's own entry, not acme's
        assert p.calls == 2


async def test_semantic_hit_and_guard_veto(fake_clock: FakeClock) -> None:
    p = Counting("a")
    async with gateway(fake_clock, p, semantic=True) as gw:
        await ask(gw, call("How do I convert a string to an integer in JavaScript?"))
        para = call("Hey, how can I convert a string into an integer in JavaScript? Thanks!")
        await ask(gw, para)
        assert para.served.cache == "semantic" and p.calls == 1
        assert para.served.cache_similarity is not None and para.served.cache_similarity >= 0.8
        assert "x-headway-cache-similarity" in para.served.headers
        flipped = call("How do I convert an integer to a string in JavaScript?")
        await ask(gw, flipped)
        assert flipped.served.cache == "miss" and p.calls == 2


async def test_multi_turn_is_not_semantic_cacheable(fake_clock: FakeClock) -> None:
    p = Counting("a")
    async with gateway(fake_clock, p, semantic=True) as gw:
        history = (Message("user", "Recommend a book."), Message("assistant", "Dune."))
        first = Call(
            ChatRequest("default", (*history, Message("user", "Tell me more about it."))), task="qa"
        )
        await gw.chat(call=first)
        other = Call(
            ChatRequest(
                "default",
                (
                    Message("user", "x"),
                    Message("assistant", "y"),
                    Message("user", "Tell me more about it"),
                ),
            ),
            task="qa",
        )
        await gw.chat(call=other)
        assert other.served.cache == "miss" and p.calls == 2


async def test_stream_is_stored_once_complete_and_replayed(fake_clock: FakeClock) -> None:
    p = Counting("a")
    async with gateway(fake_clock, p) as gw:
        live = [c async for c in gw.stream(call=call("Name three rivers"))]
        replay_call = call("name three rivers")
        replayed = [c async for c in gw.stream(call=replay_call)]
        assert replay_call.served.cache == "exact" and p.calls == 1
        assert "".join(c.text for c in replayed) == "".join(c.text for c in live)
        assert replayed[-1].finish_reason == live[-1].finish_reason
        as_chat = call("Name three rivers.")
        reply = await ask(gw, as_chat)  # a stored stream answers a plain call too
        assert as_chat.served.cache == "exact" and reply.content == "a: Name three rivers"


async def test_partial_stream_is_never_cached(fake_clock: FakeClock) -> None:
    p = Counting("a")
    p.cut_after = 2
    async with gateway(fake_clock, p) as gw:
        with pytest.raises(StreamInterrupted):
            _ = [c async for c in gw.stream(call=call("Name three rivers"))]
        p.cut_after = None
        agen = gw.stream(call=call("Name four rivers"))
        await agen.__anext__()
        await agen.aclose()  # type: ignore[attr-defined]  # the caller went away mid-stream
        again = call("Name three rivers")
        await ask(gw, again)
        assert again.served.cache == "miss"
        gone = call("Name four rivers")
        await ask(gw, gone)
        assert gone.served.cache == "miss"


async def test_purge_by_tenant_and_model(fake_clock: FakeClock) -> None:
    p = Counting("a")
    async with gateway(fake_clock, p, semantic=True) as gw:
        await ask(gw, call("q one", tenant="acme"))
        await ask(gw, call("q one", tenant="globex"))
        stage = cache_of(gw.services)
        assert stage is not None
        assert await stage.purge(tenant="acme") == 1
        a, g = call("q one", tenant="acme"), call("q one", tenant="globex")
        await ask(gw, a)
        await ask(gw, g)
        assert a.served.cache == "miss" and g.served.cache == "exact"
        assert await stage.purge(model="default") == 2


async def test_redis_backend_is_shared_between_replicas(
    fake_clock: FakeClock, redis_url: str
) -> None:
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    text = CONFIG % "false" + f"  backend: redis\n  redis_url: {redis_url}\n"
    p1, p2 = Counting("a"), Counting("a")
    async with (
        Gateway(load(text=text, env={}), clock=fake_clock, providers={"a": p1}) as one,
        Gateway(load(text=text, env={}), clock=fake_clock, providers={"a": p2}) as two,
    ):
        await ask(one, call("What is the capital of Peru?"))
        other = call("What is the capital of Peru?")
        await ask(two, other)
        assert other.served.cache == "exact" and (p1.calls, p2.calls) == (1, 0)
        stranger = call("What is the capital of Peru?", tenant="t2")
        await ask(two, stranger)
        assert stranger.served.cache == "miss" and p2.calls == 1


async def test_reload_with_the_same_cache_config_keeps_entries(fake_clock: FakeClock) -> None:
    p = Counting("a")
    async with gateway(fake_clock, p) as gw:
        await ask(gw, call("q"))
        await gw.reload(load(text=CONFIG % "false", env={}))
        again = call("q")
        await ask(gw, again)
        assert again.served.cache == "exact" and p.calls == 1


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_unreachable_redis_cache_is_a_miss_not_an_outage(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    text = CONFIG % "false" + f"  backend: redis\n  redis_url: {url}\n"
    p = Counting("a")
    async with Gateway(load(text=text, env={}), clock=fake_clock, providers={"a": p}) as gw:
        with caplog.at_level("WARNING", logger="headway.cache"):
            first, again = (
                call("What is the capital of Peru?"),
                call("What is the capital of Peru?"),
            )
            assert (await ask(gw, first)).content
            assert (await ask(gw, again)).content
            chunks = [c async for c in gw.stream(call=call("And of Chile?"))]
        assert first.served.cache == "miss" and again.served.cache == "miss"
        assert chunks and p.calls == 3  # every call reached the provider: nothing was cached
        warnings = [r for r in caplog.records if "cache store unavailable" in r.getMessage()]
        assert len(warnings) >= 1
