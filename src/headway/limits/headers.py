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
#: per family: the names of its limit, remaining and reset headers
_NAMES = {
    f: (f"x-ratelimit-limit-{f}", f"x-ratelimit-remaining-{f}", f"x-ratelimit-reset-{f}")
    for f in _FAMILY
}


#: per header family, in the order a family first appears: its header names, and the items its
#: headers are drawn from (each item's index, and its limit as header text)
HeaderSlots = tuple[tuple[tuple[str, str, str], tuple[tuple[int, str], ...]], ...]


def header_slots(items: Sequence[Item]) -> HeaderSlots:
    """Which of `items` count for the headers: the caller's own request and token buckets (not
    the provider's, not budgets), by family. A caller's items are the same call after call, so
    the planner works this out once per caller."""
    families: dict[str, list[tuple[int, str]]] = {}
    for i, item in enumerate(items):
        if (
            item.kind == "bucket"
            and not item.budget
            and item.tier != "deployment"
            and item.measure in _FAMILY
        ):
            families.setdefault(_FAMILY[item.measure], []).append((i, str(item.limit)))
    return tuple((_NAMES[f], tuple(slots)) for f, slots in families.items())


def ratelimit_headers(
    res: Reservation, slots: HeaderSlots | None = None, out: dict[str, str] | None = None
) -> dict[str, str]:
    """The caller's tightest request and token limits, written into `out` (a new dict when
    None), which is returned. `slots` are `header_slots` of the reservation's leading items,
    when known (a reservation starts with the caller's items)."""
    items, levels = res.items, res.used
    if out is None:
        out = {}
    for (limit_name, remaining_name, reset_name), family in (
        header_slots(items) if slots is None else slots
    ):
        # the least remaining; of equals, the one that takes longest to be whole again (a
        # bucket is whole once drained); of those, the first
        best: str | None = None
        best_remaining = best_reset = 0.0
        for i, limit_text in family:
            item, used = items[i], levels[i]
            remaining = item.limit - used
            if remaining < 0.0:
                remaining = 0.0
            reset = used * item.period / item.limit
            if (
                best is None
                or remaining < best_remaining
                or (remaining == best_remaining and reset > best_reset)
            ):
                best, best_remaining, best_reset = limit_text, remaining, reset
        if best is not None:
            out[limit_name] = best
            out[remaining_name] = str(math.floor(best_remaining))
            out[reset_name] = go_duration(best_reset)
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
