"""`cost_micro`'s shortcut for calls without prompt-cache tokens gives the general sum's value."""

from __future__ import annotations

import random
from decimal import Decimal

from headway.budgets.pricing import Price, cost_micro, shipped_table
from headway.types import Usage


def _general(usage: Usage, price: Price) -> Decimal:
    in_rate, out_rate = price.rates(usage.input_tokens)
    cached_rate = price.cached_input if price.cached_input is not None else in_rate
    write_rate = price.cache_write if price.cache_write is not None else in_rate
    return (
        usage.input_tokens * in_rate
        + 0 * cached_rate
        + 0 * write_rate
        + usage.output_tokens * out_rate
    )


def test_no_cache_tokens_cost_what_the_general_sum_gives() -> None:
    rng = random.Random(3)
    table = shipped_table()
    names = sorted(table)
    for _ in range(2000):
        price = table[rng.choice(names)]
        usage = Usage(rng.randrange(0, 400_000), rng.randrange(0, 20_000))
        assert cost_micro(usage, price) == _general(usage, price)


def test_cache_tokens_still_take_the_general_sum() -> None:
    price = Price(Decimal("2.5"), Decimal("10"), cached_input=Decimal("1.25"))
    assert cost_micro(Usage(1000, 10, cached_input_tokens=400), price) == Decimal("2100.00")
