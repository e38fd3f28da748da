"""Settlement: from what a call really used to its cost and the amounts each reserved item
keeps. `account` and `settled_stream` are the one implementation both the limits stage and the
settle-only stage (limits/settle_only.py) use; the rest is pure arithmetic."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar

from headway.budgets.pricing import Price, cost_micro
from headway.budgets.values import MICRO
from headway.context import Call
from headway.limits.estimate import Demand
from headway.limits.values import Item, Reservation
from headway.observe.events import EventBus
from headway.pipeline import StreamHandler, aclose
from headway.types import ChatChunk, Usage

EVENT = "call.settled"
HITS = ("exact", "semantic", "stale")
_ZERO = Decimal(0)

T = TypeVar("T")


@dataclass(slots=True)
class Actual:
    """What a call used, as every measure counts it.

    A value, never changed once built. Not declared frozen: a frozen dataclass sets each field
    through `object.__setattr__`, and one is built per settled call; nothing hashes it or relies
    on it being immutable (only `settlement` and the limits stage read it)."""

    usage: Usage
    #: exact cost in micro-dollars; None when the deployment has no known price
    cost_micro: Decimal | None

    @property
    def cost_int(self) -> int:
        return math.ceil(self.cost_micro) if self.cost_micro is not None else 0

    def amounts(self) -> dict[str, int]:
        """The amount of every measure (`Measure`), to look up per item."""
        u = self.usage
        cost = self.cost_micro
        inputs = u.input_tokens
        uncached = inputs - u.cached_input_tokens
        return {
            "tokens": inputs + u.output_tokens,
            # providers that split input limits do not count cache reads against them
            "input": uncached if uncached > 0 else 0,
            "output": u.output_tokens,
            "usd": math.ceil(cost) if cost is not None else 0,  # `cost_int`, without its call
            # a request that was made stays made; a slot is released regardless
            "requests": 1,
            "slots": 1,
        }


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


def savings_usd(usage: Usage | None, price: Price | None) -> float | None:
    """What a cache hit avoided: the cached answer's usage at the price a fresh call would pay.
    Reported as `served.cost_usd` on the hit (metrics count it as savings), never as spend."""
    if usage is None or price is None:
        return None
    u = usage
    return _savings(
        price,
        u.input_tokens,
        u.output_tokens,
        u.cached_input_tokens,
        u.cache_write_tokens,
        u.reasoning_tokens,
    )


@lru_cache(maxsize=1024)
def _savings(
    price: Price, input_tokens: int, output: int, cached: int, written: int, reasoning: int
) -> float:
    # a hot entry is hit with the same usage at the same price again and again: its Decimal
    # arithmetic is done once (keyed by every count, so it stays right whatever cost_micro reads)
    usage = Usage(input_tokens, output, cached, written, reasoning)
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
    amounts = actual.amounts()
    if not moved and not keeps_reserved:  # the usual call: every item charged what was used
        return [amounts[item.measure] for item in items]
    out: list[int] = []
    for item in items:
        if item.tier != "deployment":
            out.append(amounts[item.measure])
        elif moved:
            out.append(0)
        elif keeps_reserved:
            out.append(max(item.amount, amounts[item.measure]))
        else:
            out.append(amounts[item.measure])
    return out


def account(
    call: Call,
    reported: Usage | None,
    *,
    started: bool,
    price: Price | None,
    estimate: Callable[[], Demand],
    streamed: Callable[[], int],
) -> tuple[Usage, Decimal | None]:
    """What a finished call used and cost (micro-dollars; None when unpriced); sets
    `served.cost_usd`. `price` is the serving deployment's (for a hit: the one a fresh call would
    have used). `estimate` and `streamed` are called only for a stream cut before its usage
    arrived, the one case that needs counting: the input estimate and the output already sent."""
    served = call.served
    if served.cache in HITS:
        # a hit used and cost nothing upstream; what it saved is reported, never spent
        if served.cost_usd is None:  # unless the cache said so already
            served.cost_usd = savings_usd(served.usage, price)
        return Usage(), _ZERO
    usage = reported if reported is not None else served.usage
    if usage is None:
        usage = actual_usage(
            None,
            cache_hit=False,
            started=started,
            demand=estimate() if started else Demand(0, 0),
            streamed_tokens=streamed() if started else 0,
        )
    if price is None:
        return usage, None
    cost = cost_micro(usage, price)
    served.cost_usd = float(cost / MICRO)
    return usage, cost


def emit_settled(
    events: EventBus, call: Call, usage: Usage, cost: Decimal | None, dep: str | None
) -> None:
    """`call.settled`: the ledger and the spend metrics listen."""
    if events.wants(EVENT):
        events.emit(
            EVENT,
            call=call,
            usage=usage,
            cost_usd=None if cost is None else cost / MICRO,
            deployment=dep,
        )


async def settled_stream(
    call: Call,
    nxt: StreamHandler,
    begin: Callable[[Call], Awaitable[T]],
    end: Callable[[Call, T, Usage | None, bool, list[str]], Awaitable[None]],
) -> AsyncIterator[ChatChunk]:
    """A stream that settles once it is over: `begin` runs before the first chunk (its errors
    still reach the caller as a plain HTTP error), `end(call, token, usage, started, parts)` in the
    generator's `finally`: on normal end, on error, and when the client goes away (GeneratorExit
    from aclose, or CancelledError). `parts` is the output text sent, for a stream cut before
    its usage arrived."""
    token = await begin(call)
    usage: Usage | None = None
    parts: list[str] = []
    started = False
    ended = False
    chunks = nxt(call)
    try:
        async for chunk in chunks:
            started = True
            if chunk.usage is not None:
                usage = chunk.usage
            text = chunk.text
            if text:
                parts.append(text)
            if chunk.refusal:
                parts.append(chunk.refusal)
            if chunk.tool_calls:  # rare: no loop set up per text chunk
                for delta in chunk.tool_calls:
                    parts.append((delta.name or "") + delta.arguments)
            yield chunk
        ended = True
    finally:
        try:
            # the client went away: close the upstream stream too, before accounting (a stream
            # that ended is closed already)
            if not ended:
                await aclose(chunks)
        finally:
            await end(call, token, usage, started, parts)


#: what the limits stage's settlement needs: the call, its reservation, the amount per reserved
#: item, items charged without a reservation, and (usage, cost, deployment) for `call.settled`
SettleJob = tuple[
    Call, Reservation, list[int], Sequence[Item], tuple[Usage, Decimal | None, str | None]
]

#: `settle_soon` of a store that has it (limits/redis_store.RedisLimitStore): the settlement
#: written at once, its raw reply to await
SettleSoon = Callable[[Reservation, Sequence[int], Sequence[Item]], Awaitable[Any]]


def pass_on(done: asyncio.Future[None], task: asyncio.Future[None]) -> None:
    """Complete `done` as `task` completed (unless its awaiting caller went away)."""
    if done.done():
        return
    exc = None if task.cancelled() else task.exception()
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(None)
