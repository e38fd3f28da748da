"""Limit values, the items a store reserves, and what a reservation returns.

Everything a store needs to check a limit travels with the item (its capacity, its window and the
amount asked for), so the store holds only counters and config changes take effect on the next
request without touching stored state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal

#: bucket: continuously refilling (leaky bucket / GCRA), for rpm, tpm, tpd
#: window: a counter that resets at fixed, epoch-aligned boundaries (budgets per hour, per day)
#: concurrency: leased slots, released when the call ends (or when the lease runs out)
ItemKind = Literal["bucket", "window", "concurrency"]

#: what an item counts, so settlement knows which part of the real usage to charge
Measure = Literal["requests", "tokens", "input", "output", "usd", "slots"]


@dataclass(slots=True, frozen=True)
class LimitSpec:
    """Rate limits of one tier. None means "no limit on this metric"."""

    rpm: int | None = None
    rpd: int | None = None
    tpm: int | None = None
    tpd: int | None = None
    #: providers that split input and output token limits (Anthropic ITPM / OTPM)
    input_tpm: int | None = None
    output_tpm: int | None = None
    concurrency: int | None = None

    def merged(self, override: LimitSpec | None) -> LimitSpec:
        """This spec with every metric `override` sets replaced (an explicit value always wins)."""
        if override is None:
            return self
        values = {f.name: getattr(override, f.name) for f in fields(LimitSpec)}
        base = {f.name: getattr(self, f.name) for f in fields(LimitSpec)}
        return LimitSpec(**{k: v if v is not None else base[k] for k, v in values.items()})

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> LimitSpec:
        """Limits written as `{"rpm": 60, "tpm": 40000}` (API keys use this form)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown limit(s) {', '.join(unknown)}; known: {', '.join(known)}")
        return cls(**{k: int(v) for k, v in values.items() if v is not None})

    def scaled(self, share: float) -> LimitSpec:
        """Every rate limit times `share` (rounded down, at least 1); concurrency unchanged."""
        values = {f.name: getattr(self, f.name) for f in fields(LimitSpec)}
        return LimitSpec(
            **{
                k: v if v is None or k == "concurrency" else max(1, math.floor(v * share))
                for k, v in values.items()
            }
        )

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(LimitSpec))


@dataclass(slots=True)
class Item:
    """One counter to check and charge. `key` identifies the counter inside a store. Treat it
    as frozen: it is not declared so because a call fills in its own amounts (`plan.fill`), and
    a frozen dataclass sets each of these nine fields through `object.__setattr__` (five times
    the cost of a plain one)."""

    key: str
    kind: ItemKind
    limit: int
    #: bucket: seconds to refill `limit` from empty; window: window length (0 = never resets);
    #: concurrency: lease length
    period: float
    amount: int
    tier: str
    measure: Measure
    #: short human name of the limit, e.g. "tpm" or "usd/day"
    label: str
    budget: bool = False


@dataclass(slots=True)
class Reservation:
    """Capacity taken by one call. Settle it once, with what the call really used. Treat it
    as frozen: it is not declared so because one is built per call, and a frozen dataclass
    sets each field through `object.__setattr__` (about three times the cost)."""

    id: str
    #: the applied items: the mandatory ones, then the chosen alternative's
    items: tuple[Item, ...]
    #: each item's level right after the reservation (for headers and alerts)
    used: tuple[float, ...]
    #: store time of the reservation; anchors fixed windows at settlement
    at: float
    #: index of the chosen alternative group, -1 when no alternatives were given
    choice: int = -1


@dataclass(slots=True, frozen=True)
class Rejection:
    """Nothing was reserved: `item` does not fit. `retry_after` None means it never will
    (the amount exceeds the limit, or a budget without a reset is spent)."""

    item: Item
    retry_after: float | None
    at: float

    @property
    def key(self) -> str:
        return self.item.key


Outcome = Reservation | Rejection


class StoreUnavailable(Exception):
    """The limit backend cannot be reached. The stage applies the configured failure policy."""
