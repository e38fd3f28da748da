"""Work the limits stage does once instead of per call gives exactly what the per-call work
gave: header slots, zero-delta settlement, remembered savings."""

from __future__ import annotations

import random
from decimal import Decimal

from headway.budgets.pricing import Price, cost_micro
from headway.budgets.values import MICRO
from headway.limits.headers import header_slots, ratelimit_headers
from headway.limits.settle import savings_usd
from headway.limits.store import MemoryLimitStore
from headway.limits.values import Item, Reservation
from headway.types import Usage
from tests.limits.items import bucket, window

_TIERS = ("key", "user", "global", "deployment")
_MEASURES = ("requests", "tokens", "input", "output", "usd", "slots")


def _random_item(rng: random.Random, i: int, tier: str | None = None) -> Item:
    kind = rng.choice(("bucket", "bucket", "window", "concurrency"))
    limit = rng.randint(1, 1000)
    return Item(
        f"k{i}",
        kind,  # type: ignore[arg-type]
        limit,
        rng.choice((1.0, 60.0, 86400.0)),
        rng.randint(0, limit),
        tier or rng.choice(_TIERS),
        rng.choice(_MEASURES),  # type: ignore[arg-type]
        "x",
        budget=rng.random() < 0.3,
    )


def test_headers_from_slots_equal_headers_from_every_item() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        caller = tuple(_random_item(rng, i) for i in range(rng.randint(0, 8)))
        # a chosen group is the deployment's own limits
        group = tuple(_random_item(rng, 100 + i, "deployment") for i in range(rng.randint(0, 3)))
        items = (*caller, *group)
        # levels with ties, so the first of equally tight items must win both ways
        used = tuple(float(rng.choice((0, 1, 5, it.limit, it.limit + 3))) for it in items)
        res = Reservation("r", items, used, 0.0)
        assert ratelimit_headers(res, header_slots(caller)) == ratelimit_headers(res)


async def test_a_zero_correction_returns_the_current_level() -> None:
    store = MemoryLimitStore()
    items = (bucket("b", limit=60, amount=30), window("w", limit=100, amount=7))
    res = await store.reserve(items, now=0.0)
    assert isinstance(res, Reservation)
    # 10 s later the bucket (60 per 60 s) has drained 10; the window still holds 7
    assert await store.settle(res, [30, 7], now=10.0) == (20.0, 7.0)


def test_remembered_savings_equal_the_exact_figure() -> None:
    price = Price(Decimal("2.5"), Decimal("10"), Decimal("1.25"), Decimal("3.75"))
    rng = random.Random(3)
    for _ in range(500):
        a, b, c, d, e = (rng.randint(0, 5000) for _ in range(5))
        usage = Usage(a, b, c, d, e)
        exact = float(cost_micro(usage, price) / MICRO)
        assert savings_usd(usage, price) == exact
        assert savings_usd(usage, price) == exact  # the remembered one, too
    assert savings_usd(None, price) is None
    assert savings_usd(Usage(1, 1), None) is None
