"""A fresh answer's SET on Redis: written without awaiting its reply only while the limits
stage's settlement is written and awaited after it (so the SET is on its socket before the
response, and any replica reads the entry right after); awaited otherwise; a failure is a
throttled warning, never an error of the call."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from headway.cache import stage as cache_stage
from headway.cache.factory import cache_of
from headway.cache.store import RedisStore
from headway.clock import FakeClock
from headway.config.load import load
from headway.gateway import Gateway
from headway.stores.redis import RedisClient
from tests.cache.test_stage import Counting, ask, call
from tests.limits.test_redis_store import command_name

CACHE = """
providers: {p: {kind: sim}}
models:
  a: {provider: p, model: a, input_price: 1.0, output_price: 1.0}
routes:
  default: {chain: [a]}
cache:
  enabled: true
  ttl: {qa: 600}
  semantic: {enabled: false}
  backend: redis
  redis_url: %(url)s
ledger: {enabled: false}
"""

LIMITS = """
state: {backend: redis, redis_url: '%(url)s'}
limits: {enabled: true, global: {rpm: 1000000, tpm: 1000000000}}
budgets: {enabled: true, global: [{period: day, usd: 1000000}]}
"""


class Commands:
    """The names of the commands a cache stage's client sends, awaited (`send`) or not
    (`post`)."""

    def __init__(self, gw: Gateway) -> None:
        stage = cache_of(gw.services)
        assert stage is not None and isinstance(stage.store, RedisStore)
        client = stage.store._r
        assert isinstance(client, RedisClient)
        self.sent: list[str] = []
        self.posted: list[str] = []
        send, post = client.send, client.post

        def counted_send(command: bytes) -> Any:
            self.sent.append(command_name(command))
            return send(command)

        def counted_post(command: bytes, sink: Any) -> bool:
            self.posted.append(command_name(command))
            return post(command, sink)

        client.send = counted_send  # type: ignore[method-assign]
        client.post = counted_post  # type: ignore[method-assign]


@pytest.fixture
async def url(redis_url: str) -> str:
    admin: Any = aioredis.from_url(redis_url)
    await admin.flushdb()
    await admin.aclose()
    return redis_url


async def test_with_a_settlement_after_it_the_set_is_not_awaited_yet_replicas_read_it(
    fake_clock: FakeClock, url: str
) -> None:
    text = (CACHE + LIMITS) % {"url": url}
    p1, p2 = Counting("a"), Counting("a")
    async with (
        Gateway(load(text=text, env={}), clock=fake_clock, providers={"a": p1}) as one,
        Gateway(load(text=text, env={}), clock=fake_clock, providers={"a": p2}) as two,
    ):
        await ask(one, call("warm-up"))  # connections open
        commands = Commands(one)
        await ask(one, call("What is the capital of Peru?"))
        # one client for limits and cache: the SET leaves unawaited with the settlement
        assert commands.sent == ["EVALSHA", "GET", "EVALSHA"] and commands.posted == ["SET"]
        # the very next request, on another replica's connection, reads the entry
        other = call("What is the capital of Peru?")
        await ask(two, other)
        assert other.served.cache == "exact" and (p1.calls, p2.calls) == (2, 0)


async def test_without_a_settlement_after_it_the_set_is_awaited(
    fake_clock: FakeClock, url: str
) -> None:
    text = CACHE % {"url": url}
    async with Gateway(
        load(text=text, env={}), clock=fake_clock, providers={"a": Counting("a")}
    ) as gw:
        await ask(gw, call("warm-up"))
        commands = Commands(gw)
        await ask(gw, call("What is the capital of Peru?"))
        assert commands.sent == ["GET", "SET"] and commands.posted == []


async def test_a_set_that_fails_unawaited_is_a_throttled_warning(
    fake_clock: FakeClock,
    url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a user who may do everything but SET: Redis answers the cache's SET with an error
    admin: Any = aioredis.from_url(url)
    await admin.execute_command("ACL", "SETUSER", "noset", "on", ">pw", "~*", "&*", "+@all", "-set")
    try:
        limited = url.replace("redis://", "redis://noset:pw@")
        text = CACHE % {"url": limited} + LIMITS % {"url": url}
        monkeypatch.setattr(cache_stage, "_warned_at", [float("-inf")])
        p = Counting("a")
        async with Gateway(load(text=text, env={}), clock=fake_clock, providers={"a": p}) as gw:
            await ask(gw, call("warm-up"))
            commands = Commands(gw)
            with caplog.at_level("WARNING", logger="headway.cache"):
                for _ in range(3):
                    answered = call("What is the capital of Peru?")
                    assert (await ask(gw, answered)).content
                    assert answered.served.cache == "miss"  # nothing was stored
                await ask(gw, call("one more, so the last reply is read"))
            assert commands.posted.count("SET") == 4
        warnings = [r for r in caplog.records if "cache store unavailable" in r.getMessage()]
        assert len(warnings) == 1 and "NOPERM" in warnings[0].getMessage()
        assert p.calls == 5
    finally:
        await admin.execute_command("ACL", "DELUSER", "noset")
        await admin.aclose()
