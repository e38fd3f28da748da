"""Prices and cost, exact.

A price of X USD per 1M tokens is X micro-dollars per token, so cost in micro-dollars is a plain
sum of tokens times prices, computed in Decimal: no float ever touches money. Budget counters hold
integer micro-dollars; worst cases are rounded up.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from headway.budgets.config import PriceEntry
from headway.config.runtime import Deployment, RuntimeConfig
from headway.types import Usage


@dataclass(slots=True, frozen=True)
class Price:
    """USD per 1M tokens (= micro-dollars per token)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write: Decimal | None = None
    #: above this many input tokens the whole call is billed at the long-context rates
    long_threshold: int | None = None
    long_input: Decimal | None = None
    long_output: Decimal | None = None

    def rates(self, input_tokens: int) -> tuple[Decimal, Decimal]:
        if self.long_threshold is not None and input_tokens > self.long_threshold:
            return self.long_input or self.input, self.long_output or self.output
        return self.input, self.output


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _price(raw: dict[str, Any]) -> Price:
    long = raw.get("long_context") or {}
    return Price(
        input=Decimal(str(raw["input"])),
        output=Decimal(str(raw["output"])),
        cached_input=_dec(raw.get("cached_input")),
        cache_write=_dec(raw.get("cache_write")),
        long_threshold=long.get("threshold"),
        long_input=_dec(long.get("input")),
        long_output=_dec(long.get("output")),
    )


@cache
def shipped_table() -> dict[str, Price]:
    """The pricing table shipped as package data, read once."""
    text = resources.files("headway.budgets").joinpath("pricing.json").read_text("utf-8")
    return {name: _price(raw) for name, raw in json.loads(text)["models"].items()}


def lookup(model_id: str, table: dict[str, Price]) -> Price | None:
    """The entry for `model_id`, or for the longest name it extends with a `-` suffix
    (dated snapshots: `gpt-4o-2024-08-06` -> `gpt-4o`, `claude-haiku-4-5-20251001`)."""
    if model_id in table:
        return table[model_id]
    best = ""
    for name in table:
        if model_id.startswith(name + "-") and len(name) > len(best):
            best = name
    return table[best] if best else None


def cost_micro(usage: Usage, price: Price) -> Decimal:
    """What `usage` costs, in micro-dollars, exactly."""
    long = price.long_threshold
    if long is not None and usage.input_tokens > long:
        in_rate, out_rate = price.rates(usage.input_tokens)
    else:  # `rates` without the call and its tuple (most prices have no long-context tier)
        in_rate, out_rate = price.input, price.output
    if not usage.cached_input_tokens and not usage.cache_write_tokens:
        # most calls read and write no prompt cache: the sum below without its two zero terms
        return usage.input_tokens * in_rate + usage.output_tokens * out_rate
    cached = min(max(usage.cached_input_tokens, 0), usage.input_tokens)
    written = min(max(usage.cache_write_tokens, 0), usage.input_tokens - cached)
    plain = usage.input_tokens - cached - written
    cached_rate = price.cached_input if price.cached_input is not None else in_rate
    write_rate = price.cache_write if price.cache_write is not None else in_rate
    return (
        plain * in_rate
        + cached * cached_rate
        + written * write_rate
        + usage.output_tokens * out_rate
    )


def worst_case_micro(input_tokens: int, output_tokens: int, price: Price) -> int:
    """The most a call with this many input tokens and this output cap can cost, rounded up.
    Input is charged at the dearer of the plain and the cache-write rate."""
    long = price.long_threshold
    if long is not None and input_tokens > long:
        in_rate, out_rate = price.rates(input_tokens)
    else:  # `rates` without the call and its tuple
        in_rate, out_rate = price.input, price.output
    if price.cache_write is not None and price.cache_write > in_rate:
        in_rate = price.cache_write
    return math.ceil(input_tokens * in_rate + output_tokens * out_rate)


class PriceBook:
    """Prices per deployment: config overrides on top of the shipped table, resolved once."""

    def __init__(self, runtime: RuntimeConfig) -> None:
        table = dict(shipped_table())
        for name, entry in runtime.file.budgets.prices.items():
            table[name] = _from_entry(entry)
        self._prices = {
            name: _for_deployment(dep, table) for name, dep in runtime.deployments.items()
        }
        #: `get(deployment)`: its price, or None. The dict's own `get`, not a method around it:
        #: settlement asks once per call, and this is a C call instead of a Python one
        self.get: Callable[[str], Price | None] = self._prices.get

    def unpriced(self) -> list[str]:
        return [name for name, price in self._prices.items() if price is None]


def _from_entry(entry: PriceEntry) -> Price:
    return Price(entry.input, entry.output, entry.cached_input, entry.cache_write)


def _for_deployment(dep: Deployment, table: dict[str, Price]) -> Price | None:
    base = lookup(dep.model.model, table)
    m = dep.model
    input_price = _dec(m.input_price) if m.input_price is not None else None
    output_price = _dec(m.output_price) if m.output_price is not None else None
    cached = _dec(m.cached_input_price) if m.cached_input_price is not None else None
    if base is None:
        if input_price is None or output_price is None:
            return None
        return Price(input_price, output_price, cached)
    if input_price is None and output_price is None and cached is None:
        return base
    return Price(
        input=input_price if input_price is not None else base.input,
        output=output_price if output_price is not None else base.output,
        cached_input=cached if cached is not None else base.cached_input,
        cache_write=base.cache_write,
        # configured rates are taken as the whole truth: no long-context tier on top of them
    )
