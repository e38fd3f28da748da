"""Config section `budgets`: token and dollar budgets, reserved before the call and settled after.

    budgets:
      enabled: true
      per_request: {usd: 0.50}
      user: [{period: hour, usd: 2}, {period: day, usd: 10, tokens: 2000000}]
      key: [{period: day, usd: 50}]                  # default; a key's own budgets override
      team: [{period: day, usd: 500}]
      teams: {research: [{period: day, usd: 2000}]}
      global: [{period: hour, usd: 100}, {period: day, usd: 1000}]
      thresholds: [0.8, 1.0]
      webhook_url: https://hooks.example.com/headway
      on_store_error: closed

Amounts are exact decimals and are kept as integer micro-dollars. Prices come from the shipped
pricing table (headway/budgets/pricing.json), overridden per model by `models.<name>.input_price`,
`output_price` and `cached_input_price`, or per upstream model id by `prices` here.

Owned by the budgets package; the root schema (headway.config.schema) only references it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from headway.budgets.values import BudgetSpec, Period
from headway.config.base import StrictModel


class BudgetAmount(StrictModel):
    period: Period = "day"
    usd: Decimal | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)

    def spec(self) -> BudgetSpec:
        return BudgetSpec(period=self.period, usd=self.usd, tokens=self.tokens)


class RequestBudget(StrictModel):
    """The most one call may cost (checked against its worst case, before it is sent)."""

    usd: Decimal | None = Field(default=None, ge=0)
    tokens: int | None = Field(default=None, ge=0)


class PriceEntry(StrictModel):
    """USD per 1M tokens."""

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cached_input: Decimal | None = Field(default=None, ge=0)
    cache_write: Decimal | None = Field(default=None, ge=0)


class BudgetsConfig(StrictModel):
    enabled: bool = False
    per_request: RequestBudget | None = None
    key: list[BudgetAmount] = Field(default_factory=list)
    user: list[BudgetAmount] = Field(default_factory=list)
    team: list[BudgetAmount] = Field(default_factory=list)
    teams: dict[str, list[BudgetAmount]] = Field(default_factory=dict)
    global_: list[BudgetAmount] = Field(default_factory=list, alias="global")
    #: fractions of a budget at which an alert fires (once per budget window)
    thresholds: list[float] = Field(default_factory=lambda: [0.8, 1.0])
    #: alerts are also POSTed here as JSON, off the response path
    webhook_url: str | None = None
    #: Redis down: `closed` (503, the default: a budget is a promise) or `open`
    on_store_error: Literal["open", "closed"] = "closed"
    #: extra or corrected prices by upstream model id (prefix match, like the shipped table)
    prices: dict[str, PriceEntry] = Field(default_factory=dict)
