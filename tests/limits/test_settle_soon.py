"""The stage's settlement on headway's own Redis client: written to the connection as soon as
the call is over, without a task of its own; the `call.settled` event still comes before the
call returns, a script the server lost meanwhile is sent, and a caller cancelled while the
settlement is on its way does not lose it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from headway.clock import FakeClock
from headway.context import Call
from headway.limits.redis_store import RedisLimitStore
from headway.pipeline import ChatHandler, StreamHandler
from headway.stores.redis import RedisClient
from headway.types import ChatChunk, ChatResponse
from tests.limits.rig import Rig, call, rig
from tests.limits.test_redis_store import Counting

LIMITS = "limits: {enabled: true, user: {rpm: 100, tpm: 100000}}\n"


@pytest.fixture
def client(lean_redis: RedisClient) -> RedisClient:
    return lean_redis


class After:
    """An inner stage that runs `then` once the call is answered, before it returns."""

    name = "after"

    def __init__(self) -> None:
        self.then: Any = None

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        response = await nxt(call)
        if self.then is not None:
            await self.then()
        return response

    def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        return nxt(call)


def settled(r: Rig) -> int:
    return sum(1 for e in r.events if e.kind == "call.settled")


async def tokens_used(client: RedisClient) -> float:
    """The user's tpm bucket level as stored."""
    keys = await client.execute_command("KEYS", "*tpm*")
    assert len(keys) == 1
    return float(await client.execute_command("HGET", keys[0], "u"))


async def test_a_settlement_is_one_evalsha_and_its_event_comes_before_the_return(
    fake_clock: FakeClock, client: RedisClient
) -> None:
    r = rig(LIMITS, fake_clock, store=RedisLimitStore(client, clock=fake_clock))
    await r.chat(call())  # the script is loaded
    counter = Counting(client)
    await r.chat(call())
    assert counter.sent == ["EVALSHA", "EVALSHA"]
    assert settled(r) == 2 and not r.stage._pending
    assert await tokens_used(client) == 300  # settled to the usage: 150 per call


async def test_a_script_lost_before_the_settlement_is_sent_and_settled(
    fake_clock: FakeClock, client: RedisClient
) -> None:
    inner = After()
    r = rig(LIMITS, fake_clock, store=RedisLimitStore(client, clock=fake_clock), inner=[inner])
    await r.chat(call())

    async def flush() -> None:
        await client.execute_command("SCRIPT", "FLUSH")

    inner.then = flush  # between the reservation and the settlement
    counter = Counting(client)
    await r.chat(call())
    assert counter.sent == ["EVALSHA", "SCRIPT", "EVALSHA", "EVALSHA", "EVAL"]
    assert settled(r) == 2 and not r.stage._pending
    assert await tokens_used(client) == 300


async def test_a_caller_cancelled_during_the_settlement_does_not_lose_it(
    fake_clock: FakeClock, client: RedisClient
) -> None:
    inner = After()
    r = rig(LIMITS, fake_clock, store=RedisLimitStore(client, clock=fake_clock), inner=[inner])
    await r.chat(call())
    task: asyncio.Task[ChatResponse] | None = None

    async def cancel_soon() -> None:
        assert task is not None
        # runs before the settlement's reply can arrive: the caller is cancelled awaiting it
        asyncio.get_running_loop().call_soon(task.cancel)

    inner.then = cancel_soon
    task = asyncio.ensure_future(r.chat(call()))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await client.ping()  # its reply comes after the settlement's
    assert settled(r) == 2 and not r.stage._pending
    assert await tokens_used(client) == 300
