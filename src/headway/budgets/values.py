"""Budget values: an amount of dollars and/or tokens per period."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

Period = Literal["minute", "hour", "day", "week", "month", "total"]

#: window length per fixed period; budgets reset at epoch-aligned (UTC) boundaries. "month" is
#: the calendar month (headway.limits.window.MONTH), not a fixed length.
PERIOD_SECONDS: dict[str, float] = {
    "minute": 60.0,
    "hour": 3600.0,
    "day": 86400.0,
    "week": 7 * 86400.0,
    "total": 0.0,
}

MICRO = Decimal(1_000_000)


@dataclass(slots=True, frozen=True)
class BudgetSpec:
    """At most `usd` dollars and/or `tokens` tokens per `period` ("total" never resets)."""

    period: Period = "day"
    usd: Decimal | None = None
    tokens: int | None = None

    @property
    def usd_micro(self) -> int | None:
        """The dollar amount in integer micro-dollars (what the counters hold)."""
        return None if self.usd is None else int(self.usd * MICRO)
