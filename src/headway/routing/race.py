"""Hedged requests: race a primary attempt against a hedge sent after a delay; first answer wins.

The race is generic over what an attempt produces (a whole ChatResponse, or a stream whose first
token arrived). The loser is stopped (its provider call cancelled, so its connection and any
reservation held for it are released) and reported as such to the caller of `race`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from headway.clock import Clock
from headway.routing.policy import Member

T = TypeVar("T")


@dataclass(slots=True)
class Runner(Generic[T]):
    """One attempt in flight: `task` resolves once it has an answer (or its first token)."""

    member: Member
    index: int
    probe: bool
    task: asyncio.Future[T]
    stop: Callable[[], None]


@dataclass(slots=True)
class RaceResult(Generic[T]):
    winner: Runner[T] | None
    failures: list[tuple[Runner[T], BaseException]]
    losers: list[Runner[T]]
    hedged: bool


async def race(
    clock: Clock,
    primary: Runner[T],
    delay: float,
    launch: Callable[[], Awaitable[Runner[T] | None]],
) -> RaceResult[T]:
    """Wait for `primary`; if it has no answer after `delay`, `launch` a hedge and take whichever
    answers first. When the primary fails before the delay, no hedge is sent (ordinary fallback
    takes over). Failures are returned, not raised; a cancelled caller stops every runner."""
    timer: asyncio.Future[None] = asyncio.ensure_future(clock.sleep(delay))
    runners: list[Runner[T]] = [primary]
    failures: list[tuple[Runner[T], BaseException]] = []
    pending: set[asyncio.Future[object]] = {primary.task, timer}  # type: ignore[arg-type]
    winner: Runner[T] | None = None
    try:
        while winner is None:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            pending -= done
            for r in runners:
                if r.task in done:
                    exc = asyncio.CancelledError() if r.task.cancelled() else r.task.exception()
                    if exc is None:
                        winner = r
                        break
                    failures.append((r, exc))
            if winner is not None:
                break
            if timer in done and len(runners) == 1 and not primary.task.done():
                hedge = await launch()
                if hedge is not None:
                    runners.append(hedge)
                    pending.add(hedge.task)  # type: ignore[arg-type]
            if all(r.task.done() for r in runners):
                break
    finally:
        timer.cancel()
        for r in runners:
            if r is not winner and not r.task.done():
                r.stop()
    losers = [r for r in runners if r is not winner and not any(f[0] is r for f in failures)]
    return RaceResult(winner, failures, losers, len(runners) > 1)
