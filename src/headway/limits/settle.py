"""Settlement, pure: from what a call really used to the amounts each reserved item keeps."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from headway.budgets.pricing import Price, cost_micro
from headway.budgets.values import MICRO
from headway.limits.estimate import Demand
from headway.limits.values import Item
from headway.types import Usage


@dataclass(slots=True, frozen=True)
class Actual:
    """What a call used, as every measure counts it."""

    usage: Usage
    #: exact cost in micro-dollars; None when the deployment has no known price
    cost_micro: Decimal | None

    @property
    def cost_int(self) -> int:
        return math.ceil(self.cost_micro) if self.cost_micro is not None else 0

    def amount(self, item: Item) -> int:
        u = self.usage
        m = item.measure
        if m == "tokens":
            return u.input_tokens + u.output_tokens
        if m == "input":
            # providers that split input limits do not count cache reads against them
            return max(0, u.input_tokens - u.cached_input_tokens)
        if m == "output":
            return u.output_tokens
        if m == "usd":
            return self.cost_int
        return 1  # a request that was made stays made; a slot is released regardless


def actual_usage(
    reported: Usage | None,
    *,
    cache_hit: bool,
    started: bool,
    demand: Demand,
    streamed_tokens: int,
) -> Usage:
    """The usage to settle: what the provider reported; nothing for a cache hit or a call that
    never produced anything; else the input estimate plus the output already streamed."""
    if cache_hit:
        return Usage()
    if reported is not None:
        return reported
    if not started:
        return Usage()
    return Usage(input_tokens=demand.input_tokens, output_tokens=streamed_tokens)


def price_usage(usage: Usage, price: Price | None) -> Decimal | None:
    return cost_micro(usage, price) if price is not None else None


def savings_usd(usage: Usage | None, price: Price | None) -> float | None:
    """What a cache hit avoided: the cached answer's usage at the price a fresh call would pay.
    Reported as `served.cost_usd` on the hit (metrics count it as savings), never as spend."""
    if usage is None or price is None:
        return None
    return float(cost_micro(usage, price) / MICRO)


def settlement(
    items: Sequence[Item],
    actual: Actual,
    *,
    reserved_dep: str | None,
    served_dep: str | None,
    keeps_reserved: bool = False,
) -> list[int]:
    """Amounts per reserved item. When the call was served by another deployment than the one
    reserved (a fallback), the reserved deployment's items are given back entirely. When the
    provider keeps its up-front charge (`keeps_reserved`), its items never go below it."""
    moved = served_dep is not None and reserved_dep is not None and served_dep != reserved_dep
    out: list[int] = []
    for item in items:
        if item.tier != "deployment":
            out.append(actual.amount(item))
        elif moved:
            out.append(0)
        elif keeps_reserved:
            out.append(max(item.amount, actual.amount(item)))
        else:
            out.append(actual.amount(item))
    return out
