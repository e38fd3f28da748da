"""What a reservation tells the caller: OpenAI-style `x-ratelimit-*` headers, and the error a
rejection becomes (naming the tier, the limit and when it resets)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from headway.budgets.values import MICRO
from headway.errors import BudgetExceeded, RateLimited
from headway.limits.values import Item, Rejection, Reservation
from headway.limits.window import go_duration

_FAMILY = {"requests": "requests", "tokens": "tokens"}
_LIMIT = {f: f"x-ratelimit-limit-{f}" for f in _FAMILY}
_REMAINING = {f: f"x-ratelimit-remaining-{f}" for f in _FAMILY}
_RESET = {f: f"x-ratelimit-reset-{f}" for f in _FAMILY}


#: (index of an item, its header family): the items headers are drawn from
HeaderSlots = tuple[tuple[int, str], ...]


def header_slots(items: Sequence[Item]) -> HeaderSlots:
    """Which of `items` count for the headers: the caller's own request and token buckets (not
    the provider's, not budgets). A caller's items are the same call after call, so the planner
    works this out once per caller."""
    return tuple(
        (i, _FAMILY[item.measure])
        for i, item in enumerate(items)
        if item.kind == "bucket"
        and not item.budget
        and item.tier != "deployment"
        and item.measure in _FAMILY
    )


def ratelimit_headers(res: Reservation, slots: HeaderSlots | None = None) -> dict[str, str]:
    """The caller's tightest request and token limits. `slots` are `header_slots` of the
    reservation's leading items, when known (a reservation starts with the caller's items)."""
    items, levels = res.items, res.used
    best: dict[str, tuple[float, float, Item]] = {}
    for i, family in header_slots(items) if slots is None else slots:
        item, used = items[i], levels[i]
        remaining = item.limit - used
        if remaining < 0.0:
            remaining = 0.0
        reset = used * item.period / item.limit  # a bucket is whole again once drained
        current = best.get(family)
        if current is None or (remaining, -reset) < (current[0], -current[1]):
            best[family] = (remaining, reset, item)
    out: dict[str, str] = {}
    for family, (remaining, reset, item) in best.items():
        out[_LIMIT[family]] = str(item.limit)
        out[_REMAINING[family]] = str(math.floor(remaining))
        out[_RESET[family]] = go_duration(reset)
    return out


def _amount(item: Item, value: float) -> str:
    if item.measure == "usd":
        return f"${value / float(MICRO):.6f}".rstrip("0").rstrip(".")
    return f"{math.ceil(value)}"


def _unit(item: Item) -> str:
    return {"requests": "request", "slots": "concurrent call"}.get(item.measure, "token")


def rejection_error(rej: Rejection) -> RateLimited:
    item = rej.item
    retry = rej.retry_after
    limit = f"{item.label}={_amount(item, item.limit)}"
    when = f" Resets in {go_duration(retry)}." if retry is not None else ""
    if item.label == "provider":
        err: RateLimited = RateLimited(
            f"The provider behind {item.key.split(':', 1)[1].replace('%3A', ':')} reports no "
            f"capacity for this request.{when}",
            tier=item.tier,
            limit="provider",
            retry_after=retry,
        )
    elif item.budget:
        need = _amount(item, item.amount)
        what = (
            "this request reserves up to" if item.measure == "usd" else "this request needs up to"
        )
        if retry is None and item.amount > item.limit:
            text = f"it is larger than the whole budget ({what} {need})."
        elif retry is None:
            text = f"it is spent and does not reset ({what} {need})."
        else:
            text = f"it would be overspent ({what} {need}).{when}"
        err = BudgetExceeded(
            f"Budget exceeded for the {item.tier} tier: the {item.label} budget of "
            f"{_amount(item, item.limit)} cannot cover this request; {text}",
            tier=item.tier,
            limit=limit,
            retry_after=retry,
        )
    elif retry is None:
        err = RateLimited(
            f"This request needs {item.amount} {_unit(item)}s, more than the {item.tier} tier's "
            f"{item.label} limit of {item.limit}: it cannot be served under this limit. "
            "Lower max_tokens or shorten the prompt.",
            tier=item.tier,
            limit=limit,
            code="request_exceeds_limit",
        )
    else:
        err = RateLimited(
            f"Rate limit reached for the {item.tier} tier: {item.label} limit {item.limit}, this "
            f"request needs {item.amount} {_unit(item)}(s).{when}",
            tier=item.tier,
            limit=limit,
            retry_after=retry,
        )
    family = _FAMILY.get(item.measure)
    if family is not None and not item.budget:
        err.headers[f"x-ratelimit-limit-{family}"] = str(item.limit)
        err.headers[f"x-ratelimit-remaining-{family}"] = "0"
        if retry is not None:
            err.headers[f"x-ratelimit-reset-{family}"] = go_duration(retry)
    return err
