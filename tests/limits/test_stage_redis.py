"""The stage on Redis: one round trip to reserve every tier, and the failure policies when
Redis is down (a closed port)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from headway.clock import FakeClock
from headway.context import Call, Principal
from headway.errors import RateLimited, Unavailable
from headway.limits.redis_store import RedisLimitStore, connect
from headway.pipeline import ChatHandler
from headway.types import ChatResponse, FinishReason, Usage
from tests.conftest import free_port
from tests.limits.rig import call, rig
from tests.limits.test_redis_store import Counting

EVERY_TIER = """
limits:
  enabled: true
  global: {rpm: 1000, tpm: 1000000}
  key: {rpm: 100, tpm: 100000, tpd: 1000000, concurrency: 10}
  user: {rpm: 100, tpm: 100000}
  team: {tpm: 100000}
  deployments: {a: {rpm: 100, tpm: 100000}, b: {rpm: 100, tpm: 100000}}
budgets:
  enabled: true
  key: [{period: day, usd: 10}]
  user: [{period: hour, usd: 1}, {period: day, usd: 5}]
  team: [{period: day, usd: 50}]
  global: [{period: hour, usd: 100}, {period: day, usd: 1000}]
"""


@pytest.fixture(params=["headway", "redis-py"])
async def down(request: pytest.FixtureRequest) -> AsyncIterator[RedisLimitStore]:
    """A store whose Redis is down (a closed port), over either client."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    client: Any = (
        connect(url)
        if request.param == "headway"
        else aioredis.from_url(url, socket_connect_timeout=1)
    )
    try:
        yield RedisLimitStore(client)
    finally:
        await client.aclose()


async def test_every_tier_is_reserved_in_one_round_trip(
    fake_clock: FakeClock, redis_client: Any
) -> None:
    r = rig(EVERY_TIER, fake_clock, store=RedisLimitStore(redis_client))
    who = Principal(key_id="k1", user="alice", team="red")
    await r.chat(call(principal=who))  # loads the script
    counter = Counting(redis_client)
    c = call(principal=who)
    await r.chat(c)
    assert counter.sent == ["EVALSHA", "EVALSHA"]  # reserve, then settle
    assert c.served.ratelimit_headers["x-ratelimit-limit-requests"] == "100"
    assert c.served.cost_usd == pytest.approx(0.00075)


async def test_the_redis_backend_comes_from_the_state_section(
    fake_clock: FakeClock, redis_url: str
) -> None:
    r = rig(
        f"state: {{backend: redis, redis_url: '{redis_url}'}}\n"
        "limits: {enabled: true, user: {rpm: 1}, wait: {enabled: false}}",
        fake_clock,
    )
    try:
        assert isinstance(r.services.extras["limits.store"], RedisLimitStore)
        assert r.services.extras["redis"] is not None  # shared with other features
        await r.services.extras["redis"].flushdb()
        await r.chat(call())
        with pytest.raises(RateLimited) as info:
            await r.chat(call())
        assert info.value.tier == "user"
    finally:
        await r.services.aclose()


async def test_budgets_fail_closed_when_redis_is_down(
    fake_clock: FakeClock, down: RedisLimitStore
) -> None:
    r = rig("budgets: {enabled: true, global: [{period: day, usd: 10}]}", fake_clock, store=down)
    with pytest.raises(Unavailable) as info:
        await r.chat(call())
    assert info.value.status == 503 and "budgets" in info.value.message
    assert not r.terminal.seen  # nothing went upstream unaccounted


class CacheHit:
    name = "cache"

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        call.served.cache = "exact"
        return ChatResponse("id", "a", "cached", FinishReason.STOP, Usage(1, 1))

    def stream(self, call: Call, nxt: object) -> object:
        raise NotImplementedError


async def test_cache_hits_keep_working_when_redis_is_down(
    fake_clock: FakeClock, down: RedisLimitStore
) -> None:
    r = rig(
        "budgets: {enabled: true, global: [{period: day, usd: 10}]}",
        fake_clock,
        store=down,
        inner=[CacheHit()],  # type: ignore[list-item]
    )
    reply = await r.chat(call())
    assert reply.content == "cached"


async def test_limits_fail_open_by_default_and_say_so(
    fake_clock: FakeClock, down: RedisLimitStore
) -> None:
    r = rig("limits: {enabled: true, user: {rpm: 10}}", fake_clock, store=down)
    c = call()
    await r.chat(c)
    assert c.served.degraded == ["limits_unenforced"]
    assert len(r.terminal.seen) == 1


async def test_limits_can_fail_closed(fake_clock: FakeClock, down: RedisLimitStore) -> None:
    r = rig(
        "limits: {enabled: true, user: {rpm: 10}, on_store_error: closed}", fake_clock, store=down
    )
    with pytest.raises(Unavailable) as info:
        await r.chat(call())
    assert "rate limits" in info.value.message
