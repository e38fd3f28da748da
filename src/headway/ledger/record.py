"""Ledger values: one record per settled call, the aggregated rows a query returns, and the
parsing of query bounds.

Cost is stored as an integer number of nano-dollars, so sums are exact in every database and a
call costing a fraction of a micro-dollar still counts.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any, Literal, get_args

from headway.errors import InvalidRequest

GroupBy = Literal["key", "user", "team", "model", "day", "tenant", "route"]
GROUPS: tuple[str, ...] = get_args(GroupBy)

#: query group -> column
GROUP_COLUMNS: dict[str, str] = {
    "key": "key_id",
    "user": "user_id",
    "team": "team",
    "model": "model",
    "day": "day",
    "tenant": "tenant",
    "route": "route",
}

NANO = 1_000_000_000


def to_nano_usd(cost: float | Decimal | None) -> int:
    if cost is None:
        return 0
    return int((Decimal(str(cost)) * NANO).to_integral_value())


def day_of(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


@dataclass(slots=True, frozen=True)
class UsageRecord:
    """One settled call. `request_id` is the idempotency key: writing it twice counts it once."""

    request_id: str
    ts: float
    tenant: str
    key_id: str | None = None
    user: str | None = None
    team: str | None = None
    #: what the caller asked for (a route alias or a model name)
    route: str | None = None
    #: the deployment that served the call (the requested name when none did, e.g. cache hits)
    model: str | None = None
    cache: str = "off"
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cost_nusd: int = 0

    @property
    def day(self) -> str:
        return day_of(self.ts)

    @property
    def cost_usd(self) -> float:
        return self.cost_nusd / NANO

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UsageRecord:
        return cls(**data)


@dataclass(slots=True, frozen=True)
class UsageQuery:
    group_by: GroupBy = "day"
    #: inclusive lower bound, epoch seconds
    since: float | None = None
    #: exclusive upper bound, epoch seconds
    until: float | None = None
    tenant: str | None = None
    key_id: str | None = None
    user: str | None = None
    team: str | None = None
    model: str | None = None
    limit: int = 1000

    def filters(self) -> list[tuple[str, str]]:
        """(column, value) equality filters, in a fixed order."""
        pairs = [
            ("tenant", self.tenant),
            ("key_id", self.key_id),
            ("user_id", self.user),
            ("team", self.team),
            ("model", self.model),
        ]
        return [(c, v) for c, v in pairs if v is not None]


@dataclass(slots=True, frozen=True)
class UsageRow:
    group: str | None
    requests: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cost_nusd: int

    @property
    def cost_usd(self) -> float:
        return self.cost_nusd / NANO

    def public(self, group_by: str) -> dict[str, Any]:
        return {
            group_by: self.group,
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
            "cost_usd": round(self.cost_usd, 9),
        }


def parse_bound(value: str | float | None, *, name: str, end: bool) -> float | None:
    """Epoch seconds from a number, an ISO 8601 time, or a date. A date as `until` means the end
    of that day (UTC), so `since=2026-01-01&until=2026-01-31` covers all of January."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                if len(text) == 10:
                    day = dt.date.fromisoformat(text)
                    start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
                    return (start + dt.timedelta(days=1 if end else 0)).timestamp()
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError as exc:
                raise InvalidRequest(
                    f"`{name}` must be a date (2026-01-31), an ISO 8601 time or epoch seconds",
                    param=name,
                ) from exc
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return moment.timestamp()
    if not math.isfinite(number) or number < 0:
        raise InvalidRequest(f"`{name}` must be a non-negative time", param=name)
    return number


def build_query(params: dict[str, str], *, max_limit: int = 10_000) -> UsageQuery:
    """A `UsageQuery` from query-string style parameters (admin API, CLI)."""
    known = {"group_by", "since", "until", "tenant", "key", "key_id", "user", "team", "model"}
    known.add("limit")
    for k in params:
        if k not in known:
            raise InvalidRequest(f"unknown parameter `{k}`", param=k)
    group = params.get("group_by") or "day"
    if group not in GROUPS:
        raise InvalidRequest(
            f"`group_by` must be one of {', '.join(GROUPS)}, not {group!r}", param="group_by"
        )
    since = parse_bound(params.get("since"), name="since", end=False)
    until = parse_bound(params.get("until"), name="until", end=True)
    if since is not None and until is not None and until <= since:
        raise InvalidRequest("`until` must be after `since`", param="until")
    limit_text = params.get("limit") or "1000"
    if not limit_text.isdigit() or not 0 < int(limit_text) <= max_limit:
        raise InvalidRequest(f"`limit` must be an integer in 1..{max_limit}", param="limit")
    return UsageQuery(
        group_by=group,  # type: ignore[arg-type]
        since=since,
        until=until,
        tenant=params.get("tenant") or None,
        key_id=params.get("key_id") or params.get("key") or None,
        user=params.get("user") or None,
        team=params.get("team") or None,
        model=params.get("model") or None,
        limit=int(limit_text),
    )
