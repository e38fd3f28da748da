"""Fixtures for the limits tests: one `store` fixture over both backends (the contract suite)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from headway.clock import FakeClock
from headway.limits.redis_store import RedisLimitStore, connect
from headway.limits.store import LimitStore, MemoryLimitStore


@pytest.fixture(params=["memory", "redis"])
async def store(
    request: pytest.FixtureRequest, fake_clock: FakeClock, redis_url: str
) -> AsyncIterator[LimitStore]:
    """The same tests run over the in-memory store and the Redis store. Both follow the
    FakeClock: the Redis one passes its time as the script's time override."""
    if request.param == "memory":
        yield MemoryLimitStore(fake_clock)
        return
    client = connect(redis_url)
    await client.flushdb()
    try:
        yield RedisLimitStore(client, clock=fake_clock)
    finally:
        await client.aclose()
