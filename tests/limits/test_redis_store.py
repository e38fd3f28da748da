"""What only the Redis store has: server time, script caching, key layout, TTLs, round trips."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from headway.clock import FakeClock
from headway.limits.redis_store import RedisLimitStore, connect
from headway.limits.values import Item, Rejection, Reservation, StoreUnavailable
from headway.stores.redis import RedisClient
from tests.conftest import free_port
from tests.limits.items import bucket, slots, window


class Counting:
    """Counts the commands a client sends (each is one round trip without a pipeline). Every
    command of headway's own client goes through its `send` (encoded already); a redis-py
    client's through `execute_command`."""

    def __init__(self, client: Any) -> None:
        self.sent: list[str] = []
        if isinstance(client, RedisClient):
            send = client.send

            def counted(command: bytes) -> Any:
                self.sent.append(command_name(command))
                return send(command)

            client.send = counted  # type: ignore[method-assign]
            return
        inner = client.execute_command

        async def execute_command(*args: Any, **kw: Any) -> Any:
            self.sent.append(str(args[0]).upper())
            return await inner(*args, **kw)

        client.execute_command = execute_command


def command_name(command: bytes) -> str:
    """The name of a RESP-encoded command: its first bulk string."""
    _, _, name, _ = command.split(b"\r\n", 3)
    return name.decode().upper()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Any]:
    c = aioredis.from_url(redis_url)
    await c.flushdb()
    try:
        yield c
    finally:
        await c.aclose()


def every_tier() -> tuple[list[Item], list[list[Item]]]:
    """A request's items with every tier set, and a chain of two deployments."""
    mandatory = [
        Item(f"{tier}:x:{metric}", "bucket", 1000, 60.0, 10, tier, "tokens", metric)
        for tier in ("key", "user", "team", "global")
        for metric in ("rpm", "tpm", "tpd")
    ]
    mandatory += [slots("key:x:concurrency", limit=5)]
    mandatory += [
        window(f"b:{t}:x:usd:day", limit=10**6, amount=10)
        for t in ("key", "user", "team", "global")
    ]
    groups = [
        [bucket(f"deployment:{d}:{m}", limit=1000) for m in ("rpm", "tpm")] for d in ("a", "b")
    ]
    return mandatory, groups


async def test_a_reservation_with_every_tier_is_one_round_trip(client: Any, redis_url: str) -> None:
    store = RedisLimitStore(client)
    mandatory, groups = every_tier()
    await store.reserve(mandatory, groups)  # the first call may load the script
    admin = aioredis.from_url(redis_url)
    try:
        await admin.config_resetstat()
        counter = Counting(client)
        res = await store.reserve(mandatory, groups)
        assert isinstance(res, Reservation)
        assert len(res.items) == len(mandatory) + 2
        assert counter.sent == ["EVALSHA"]
        stats = await admin.info("commandstats")
    finally:
        await admin.aclose()
    assert stats["cmdstat_evalsha"]["calls"] == 1
    assert "cmdstat_eval" not in stats and "cmdstat_script|load" not in stats
    assert "cmdstat_multi" not in stats


async def test_settlement_is_one_round_trip(client: Any) -> None:
    store = RedisLimitStore(client)
    mandatory, groups = every_tier()
    res = await store.reserve(mandatory, groups)
    assert isinstance(res, Reservation)
    counter = Counting(client)
    await store.settle(res, [1] * len(res.items), extra=[bucket("deployment:b:tpm", amount=3)])
    assert counter.sent == ["EVALSHA"]


async def test_the_server_clock_is_used_without_an_override(client: Any) -> None:
    store = RedisLimitStore(client)  # no clock: the script reads TIME
    before = await client.time()
    res = await store.reserve([bucket("a", limit=10, amount=10)])
    after = await client.time()
    assert isinstance(res, Reservation)
    assert before[0] + before[1] / 1e6 <= res.at <= after[0] + after[1] / 1e6
    rej = await store.reserve([bucket("a", limit=10, amount=1)])
    assert isinstance(rej, Rejection)
    # one token of a 10-per-minute bucket: 6 s, less the few ms the server clock moved
    assert rej.retry_after is not None and 5.0 < rej.retry_after <= 6.0


async def test_a_flushed_script_cache_falls_back_to_eval_once(client: Any) -> None:
    store = RedisLimitStore(client)
    await store.reserve([bucket("a")])
    await client.script_flush()
    counter = Counting(client)
    assert isinstance(await store.reserve([bucket("a")]), Reservation)
    assert counter.sent == ["EVALSHA", "EVAL"]
    counter.sent.clear()
    assert isinstance(await store.reserve([bucket("a")]), Reservation)
    assert counter.sent == ["EVALSHA"]


async def test_keys_share_one_hash_slot_and_expire_with_their_windows(client: Any) -> None:
    now = 1_767_225_600.0 + 600  # ten minutes into an hour
    store = RedisLimitStore(client, prefix="hw")
    items = [
        bucket("tpm", limit=60, amount=30),  # 30 s to drain
        window("hour", amount=1),  # ends in 3000 s
        window("total", amount=1, period=0),  # never ends
        slots("conc", lease=120),
    ]
    assert isinstance(await store.reserve(items, now=now), Reservation)
    keys = sorted(k.decode() for k in await client.keys("*"))
    assert keys == ["{hw}:l:conc", "{hw}:l:hour", "{hw}:l:total", "{hw}:l:tpm"]
    assert len({key_slot(k.encode()) for k in keys}) == 1
    assert 30_000 < await client.pttl("{hw}:l:tpm") <= 31_000
    assert 3_000_000 < await client.pttl("{hw}:l:hour") <= 3_001_000
    assert await client.pttl("{hw}:l:total") == -1
    assert 120_000 < await client.pttl("{hw}:l:conc") <= 121_000


async def test_an_unreachable_server_is_reported_as_unavailable() -> None:
    client = aioredis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    store = RedisLimitStore(client)
    try:
        with pytest.raises(StoreUnavailable):
            await store.reserve([bucket("a")])
        with pytest.raises(StoreUnavailable):
            await store.settle(Reservation("r", (bucket("a"),), (1.0,), 0.0), [1])
    finally:
        await client.aclose()


async def test_the_shared_client_reserves_every_tier_in_one_round_trip(redis_url: str) -> None:
    """The same acceptance over headway's own client, the one the gateway runs with."""
    client = connect(redis_url)
    admin = aioredis.from_url(redis_url)
    try:
        await client.flushdb()
        store = RedisLimitStore(client)
        mandatory, groups = every_tier()
        await store.reserve(mandatory, groups)  # the first call may load the script
        await admin.config_resetstat()
        counter = Counting(client)
        res = await store.reserve(mandatory, groups)
        assert isinstance(res, Reservation)
        await store.settle(res, [1] * len(res.items))
        assert counter.sent == ["EVALSHA", "EVALSHA"]  # reserve, then settle
        stats = await admin.info("commandstats")
    finally:
        await admin.aclose()
        await client.aclose()
    assert stats["cmdstat_evalsha"]["calls"] == 2
    assert set(stats) - {"cmdstat_evalsha", "cmdstat_config|resetstat"} <= {
        f"cmdstat_{c}" for c in ("hmget", "hset", "pexpire", "time", "zadd", "zcard", "zrem")
    } | {"cmdstat_zremrangebyscore", "cmdstat_zrange"}  # only what runs inside the script


async def test_a_ttl_is_only_set_when_it_must_grow(client: Any) -> None:
    now = 1_767_225_600.0 + 600  # ten minutes into an hour
    store = RedisLimitStore(client, prefix="hw")
    tpm = bucket("tpm", limit=60, amount=30)  # 30 s to drain
    res = await store.reserve([tpm], now=now)
    assert isinstance(res, Reservation)
    assert 30_000 < await client.pttl("{hw}:l:tpm") <= 31_000
    # settled down to 10: the TTL for 30 still covers 10 draining, so it is not rewritten
    assert await store.settle(res, [10], now=now) == (10.0,)
    assert 30_000 < await client.pttl("{hw}:l:tpm") <= 31_000
    # raised to 50: 50 s to drain
    assert isinstance(
        await store.reserve([bucket("tpm", limit=60, amount=40)], now=now), Reservation
    )
    assert 50_000 < await client.pttl("{hw}:l:tpm") <= 51_000
    # another rate (a changed limit): the TTL is set again for the new rate, 51 / 100 per s
    assert isinstance(
        await store.reserve([bucket("tpm", limit=6000, amount=1)], now=now), Reservation
    )
    assert 1_000 < await client.pttl("{hw}:l:tpm") <= 1_510
    # a window's TTL is its end: set by its first write, not by the next ones in that window
    hour = window("hour", amount=1)
    assert isinstance(await store.reserve([hour], now=now), Reservation)
    assert 3_000_000 < await client.pttl("{hw}:l:hour") <= 3_001_000
    await client.persist("{hw}:l:hour")
    assert isinstance(await store.reserve([hour], now=now + 60), Reservation)
    assert await client.pttl("{hw}:l:hour") == -1
    assert isinstance(await store.reserve([hour], now=now + 3600), Reservation)
    assert 3_000_000 < await client.pttl("{hw}:l:hour") <= 3_001_000


async def test_reservation_ids_are_unique_across_replicas(client: Any) -> None:
    """Ids name concurrency leases, which replicas share: two stores' first ids must differ."""
    one, two = RedisLimitStore(client), RedisLimitStore(client)
    conc = slots("key:x:concurrency", limit=2)
    a, b = await one.reserve([conc]), await two.reserve([conc])
    assert isinstance(a, Reservation) and isinstance(b, Reservation)
    assert a.id != b.id
    assert isinstance(await one.reserve([conc]), Rejection)  # two leases held, not one
    await two.release(b)
    assert isinstance(await one.reserve([conc]), Reservation)


async def test_a_client_that_decodes_replies_reads_the_same_numbers(redis_url: str) -> None:
    """The script answers one string of numbers: read alike as bytes or as text."""
    text = aioredis.from_url(redis_url, decode_responses=True)
    try:
        await text.flushdb()
        store = RedisLimitStore(text)
        now = 1_767_225_600.25
        res = await store.reserve([bucket("a b", limit=60, amount=30), window("w")], now=now)
        assert isinstance(res, Reservation)
        assert (res.used, res.at, res.choice) == ((30.0, 1.0), now, -1)
        assert await store.settle(res, [15, 0], now=now + 1) == (14.0, 0.0)
        rej = await store.reserve([bucket("a b", limit=60, amount=60)], now=now + 1)
        assert isinstance(rej, Rejection) and rej.retry_after == pytest.approx(14.0)
    finally:
        await text.aclose()


@pytest.mark.parametrize("kind", ["headway", "redis-py"])
async def test_a_limit_changed_under_the_same_key_is_sent_with_its_new_numbers(
    kind: str, redis_url: str, fake_clock: FakeClock
) -> None:
    # what a counter sends is made once per key, and made again when its limit changes
    # (a config reload): the script must never see the old limit
    client: Any = connect(redis_url) if kind == "headway" else aioredis.from_url(redis_url)
    try:
        await client.execute_command("FLUSHDB")
        store = RedisLimitStore(client, prefix="reload", clock=fake_clock)
        assert isinstance(await store.reserve([bucket("u", limit=10, amount=8)]), Reservation)
        assert isinstance(await store.reserve([bucket("u", limit=10, amount=8)]), Rejection)
        grown = await store.reserve([bucket("u", limit=100, amount=8)])
        assert isinstance(grown, Reservation) and grown.used == (16,)
        await fake_clock.advance(0.1)
        # 100 per second drains 10 in 0.1 s (100 per minute would drain 0.17)
        faster = await store.reserve([bucket("u", limit=100, amount=8, period=1.0)])
        assert isinstance(faster, Reservation) and faster.used[0] == pytest.approx(14)
    finally:
        await client.aclose()
