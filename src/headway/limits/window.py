"""Window arithmetic, pure. The Lua scripts in `lua/` implement exactly these formulas.

Semantics (also in docs/limits.md):

- **bucket** (rpm, rpd, tpm, tpd, input/output TPM): a leaky bucket, equivalent to GCRA. The
  bucket holds `used`; it drains continuously at `limit / period` per second. An amount fits when
  `used + amount <= limit`. A burst of the full limit is allowed from idle, then throughput is the
  steady rate. This is how OpenAI and Anthropic enforce theirs, so a headway limit set to the
  provider's figure behaves like the provider.
- **window** (budgets): a counter in epoch-aligned windows of `period` seconds (UTC hours, UTC
  days); it resets to zero at each boundary. `period == 0` never resets; `period == MONTH` (-1)
  is the calendar month in UTC.
- **concurrency**: leased slots; a lease ends at settlement or after `period` seconds, so a
  crashed replica cannot hold slots forever.

Settlement adds `actual - reserved` (never below zero). Usage above the reservation is charged
anyway: the counter may go over its limit, and later calls wait until it drains.
"""

from __future__ import annotations

import math


def drain(used: float, ts: float, now: float, limit: int, period: float) -> float:
    """The level of a bucket last written at `ts`, as seen at `now`."""
    if used > 0 and now > ts:
        return max(0.0, used - (now - ts) * limit / period)
    return used


def bucket_wait(used: float, amount: int, limit: int, period: float) -> float | None:
    """Seconds until `amount` fits in a bucket at level `used`; None if it never will."""
    if amount > limit:
        return None
    over = used + amount - limit
    if over <= 0:
        return 0.0
    return over * period / limit


def bucket_ttl(used: float, limit: int, period: float) -> float:
    """Seconds until the bucket is empty again: after that its state can be forgotten."""
    return used * period / limit


#: the `period` of a window that is a calendar month (UTC)
MONTH = -1.0


def civil_from_days(days: int) -> tuple[int, int]:
    """(year, month) of a day counted from 1970-01-01 (H. Hinnant's algorithm, as in the Lua)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if month <= 2 else 0), month


def days_from_civil(year: int, month: int) -> int:
    """Days from 1970-01-01 to the first day of `month` of `year`."""
    y = year - (1 if month <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def window_index(now: float, period: float) -> float:
    if period == MONTH:
        year, month = civil_from_days(math.floor(now / 86400))
        return float(year * 12 + month - 1)
    return math.floor(now / period) if period > 0 else 0.0


def window_reset(now: float, period: float) -> float | None:
    """Seconds until the window containing `now` ends; None for a window that never ends."""
    if period == MONTH:
        idx = int(window_index(now, period)) + 1
        return days_from_civil(idx // 12, idx % 12 + 1) * 86400.0 - now
    if period <= 0:
        return None
    return (window_index(now, period) + 1) * period - now


def window_span(now: float, period: float) -> tuple[float, float | None]:
    """`(window_index, window_reset)` of `now`, the index computed once."""
    if period == MONTH:
        return window_index(now, period), window_reset(now, period)
    if period <= 0:
        return 0.0, None
    idx = math.floor(now / period)
    return idx, (idx + 1) * period - now


def window_wait(used: float, amount: int, limit: int, now: float, period: float) -> float | None:
    if amount > limit:
        return None
    if used + amount <= limit:
        return 0.0
    return window_reset(now, period)


def reset_after(kind: str, used: float, limit: int, period: float, now: float) -> float:
    """Seconds until this item is fully restored (the `x-ratelimit-reset-*` figure)."""
    if kind == "bucket":
        return bucket_ttl(used, limit, period)
    if kind == "window":
        reset = window_reset(now, period)
        return reset if reset is not None else 0.0
    return 0.0


def go_duration(seconds: float) -> str:
    """OpenAI's reset format: `12ms`, `1.5s`, `6m0s`, `1h2m3s`."""
    if seconds < 1:
        ms = math.ceil(seconds * 1000)
        return f"{ms if ms > 0 else 0}ms"  # max(0, ms) without the generic builtin call
    total = round(seconds, 3)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    sec = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{sec}"
    if minutes:
        return f"{int(minutes)}m{sec}"
    return sec
