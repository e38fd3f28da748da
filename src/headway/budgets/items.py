"""Budgets as store items: one fixed-window counter per budget, in micro-dollars or tokens.

Budgets ride in the same atomic reservation as the rate limits, so "reserve the worst case,
settle to the real cost" needs nothing of its own beyond these items.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import cast

from headway.budgets.values import MICRO, PERIOD_SECONDS, BudgetSpec, Period
from headway.limits.values import Item
from headway.limits.window import MONTH

#: the window of each period; "month" is the UTC calendar month
_PERIODS: dict[str, float] = {**PERIOD_SECONDS, "month": MONTH}


def period_seconds(period: str) -> float:
    return _PERIODS[period]


def budget_items(
    tier: str, ident: str, budgets: Iterable[BudgetSpec], tokens: int, cost_micro: int
) -> list[Item]:
    out: list[Item] = []
    for b in budgets:
        window = _PERIODS[b.period]
        if b.usd is not None:
            out.append(
                Item(
                    f"b:{tier}:{ident}:usd:{b.period}",
                    "window",
                    int(b.usd * MICRO),
                    window,
                    cost_micro,
                    tier,
                    "usd",
                    f"usd/{b.period}",
                    budget=True,
                )
            )
        if b.tokens is not None:
            out.append(
                Item(
                    f"b:{tier}:{ident}:tokens:{b.period}",
                    "window",
                    b.tokens,
                    window,
                    tokens,
                    tier,
                    "tokens",
                    f"tokens/{b.period}",
                    budget=True,
                )
            )
    return out


def budgets_from_mapping(values: Mapping[str, float]) -> tuple[BudgetSpec, ...]:
    """Budgets written as `{"usd_per_day": 5, "tokens_per_month": 1e6}` (API keys use this form)
    as BudgetSpecs. Unknown names raise ValueError."""
    usd: dict[str, Decimal] = {}
    tokens: dict[str, int] = {}
    for name, value in values.items():
        unit, sep, period = name.partition("_per_")
        if not sep or unit not in ("usd", "tokens") or period not in _PERIODS:
            raise ValueError(f"unknown budget {name!r} (expected usd_per_<period> or tokens_per_…)")
        if unit == "usd":
            usd[period] = Decimal(str(value))
        else:
            tokens[period] = int(value)
    periods = dict.fromkeys([*usd, *tokens])
    return tuple(
        BudgetSpec(period=cast(Period, p), usd=usd.get(p), tokens=tokens.get(p)) for p in periods
    )
