"""A budget is a promise: under any concurrency, settled spend never exceeds it."""

from __future__ import annotations

import asyncio
import random

from headway.clock import FakeClock
from headway.context import Principal
from headway.errors import BudgetExceeded
from headway.limits.redis_store import RedisLimitStore, connect
from headway.limits.store import LimitStore
from headway.limits.values import Reservation
from headway.types import Usage
from tests.limits.items import window
from tests.limits.rig import call, rig

BUDGET = 10_000


async def spend(store: LimitStore, rng: random.Random) -> int:
    worst = rng.randint(100, 500)
    res = await store.reserve([window("b:global:all:usd:day", limit=BUDGET, amount=worst)])
    if not isinstance(res, Reservation):
        return 0
    for _ in range(rng.randint(0, 3)):
        await asyncio.sleep(0)  # other calls reserve and settle meanwhile
    actual = rng.randint(0, worst)
    await store.settle(res, [actual])
    return actual


async def test_concurrent_reservations_never_overshoot(store: LimitStore) -> None:
    rng = random.Random(7)
    spent = await asyncio.gather(*(spend(store, rng) for _ in range(300)))
    assert 0 < sum(spent) <= BUDGET
    admitted = sum(1 for s in spent if s)
    # what is left is exactly what the settled calls did not spend
    last = await store.reserve([window("b:global:all:usd:day", limit=BUDGET, amount=0)])
    assert isinstance(last, Reservation) and last.used == (float(sum(spent)),)
    assert admitted > 20


async def test_many_redis_clients_never_overshoot(redis_url: str, fake_clock: FakeClock) -> None:
    """Several connections (as several replicas would have) racing on one budget."""
    clients = [connect(redis_url, max_connections=16) for _ in range(4)]
    try:
        await clients[0].flushdb()
        stores = [RedisLimitStore(c, clock=fake_clock) for c in clients]
        rng = random.Random(11)
        spent = await asyncio.gather(*(spend(stores[i % 4], rng) for i in range(400)))
        assert 0 < sum(spent) <= BUDGET
    finally:
        for c in clients:
            await c.aclose()


async def test_concurrent_calls_through_the_stage_stay_within_budget(
    fake_clock: FakeClock, redis_url: str
) -> None:
    client = connect(redis_url, max_connections=8)
    await client.flushdb()
    r = rig(
        "budgets: {enabled: true, global: [{period: day, usd: 0.02}]}",
        fake_clock,
        store=RedisLimitStore(client, clock=fake_clock),
    )
    rng = random.Random(3)
    for script in r.terminal.scripts.values():
        script.usage = Usage(100, 50)

    async def one(i: int) -> float:
        c = call(principal=Principal(key_id=f"k{i}"), max_tokens=rng.randint(50, 400))
        try:
            await r.chat(c)
        except BudgetExceeded:
            return 0.0
        return c.served.cost_usd or 0.0

    try:
        costs = await asyncio.gather(*(one(i) for i in range(100)))
    finally:
        await client.aclose()
    served = [c for c in costs if c]
    assert served and len(served) < 100
    assert sum(costs) <= 0.02 + 1e-12
