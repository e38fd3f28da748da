"""Breakers as the chain uses them: the pure state machine applied atomically to a store, with
events on every transition.

`BreakerStore` is the storage seam: `update(name, fn)` applies `fn` to the stored state
atomically (memory: trivially, one event loop; Redis: compare-and-set, shared by every replica).
When the shared store fails, breakers keep working on a local memory store: a Redis outage must
never take the gateway down with it (fail open, locally protected).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from headway.clock import Clock
from headway.errors import Unavailable
from headway.observe.events import EventBus
from headway.routing.breaker import (
    CLOSED,
    CLOSED_STATE,
    Admission,
    BreakerPolicy,
    BreakerState,
    Outcome,
    admit,
    record,
    record_success,
    transition,
)

log = logging.getLogger("headway.routing")

T = TypeVar("T")
Update = Callable[[BreakerState], tuple[BreakerState, T]]
#: a store's `try_update` of a record step: ((before, after),) when done without I/O, else None
TryUpdate = Callable[
    [str, Update[tuple[BreakerState, BreakerState]]],
    tuple[tuple[BreakerState, BreakerState]] | None,
]


class BreakerStore(Protocol):
    async def update(self, name: str, fn: Update[T], ttl_s: float) -> T:
        """Apply `fn` to the state of `name` atomically and store what it returns first."""
        ...

    async def load(self, name: str) -> BreakerState: ...

    async def aclose(self) -> None: ...


class MemoryBreakerStore:
    """One process's breakers. States are tiny and few (one per deployment): no expiry needed."""

    def __init__(self) -> None:
        #: name -> state (absent: closed). `Breakers` reads and writes it directly, without a
        #: coroutine: a memory state needs no I/O.
        self.states: dict[str, BreakerState] = {}

    async def update(self, name: str, fn: Update[T], ttl_s: float) -> T:
        new, out = fn(self.states.get(name, CLOSED_STATE))
        self.states[name] = new
        return out

    async def load(self, name: str) -> BreakerState:
        return self.states.get(name, CLOSED_STATE)

    async def aclose(self) -> None:
        return None


class Breakers:
    """Admission and outcome reporting for every deployment's breaker.

    With the memory store every breaker step is synchronous: `sync` is True and callers use
    `admit_now` / `record_now` instead of awaiting `admit` / `record` (the same steps, without a
    coroutine and a closure per call, which the chat path makes twice per call). A store that
    keeps a fresh local view (Redis: `peek`, `try_update`) answers the two steps of nearly
    every call the same way while that view is fresh: `closed_now`, `succeeded_now`."""

    def __init__(self, store: BreakerStore, clock: Clock, events: EventBus) -> None:
        self.store = store
        self._clock = clock
        self._events = events
        self._local = MemoryBreakerStore()
        self._degraded = False
        # exactly the memory store: a subclass may do I/O in its `update`
        self._memory = store if type(store) is MemoryBreakerStore else None
        #: the store answers without I/O: `admit_now` and `record_now` may be used
        self.sync = self._memory is not None
        # a remote store's answers without I/O, when it has them (routing/breaker_redis.py)
        self._peek: Callable[[str], BreakerState | None] | None = getattr(store, "peek", None)
        self._try: TryUpdate | None = getattr(store, "try_update", None)

    async def _apply(self, name: str, fn: Update[T], ttl_s: float) -> T:
        try:
            out = await self.store.update(name, fn, ttl_s)
        except Unavailable as exc:
            if not self._degraded:
                self._degraded = True
                log.warning("breaker store unavailable, using local breakers: %s", exc)
                self._events.emit("breaker.store_unavailable", error=str(exc))
            return await self._local.update(name, fn, ttl_s)
        if self._degraded:
            self._degraded = False
            self._events.emit("breaker.store_recovered")
        return out

    def _emit(self, name: str, before: BreakerState, after: BreakerState, why: str) -> None:
        kind = transition(before, after)
        if kind is not None:
            self._events.emit(f"breaker.{kind}", deployment=name, reason=why)

    async def admit(self, name: str, policy: BreakerPolicy | None) -> Admission:
        if policy is None:
            return Admission.ALLOW
        if self._memory is not None:
            return self.admit_now(name, policy)
        step = _admit_step(policy, self._clock.time())
        before, after, admission = await self._apply(name, step, policy.state_ttl_s)
        self._emit(name, before, after, "cooldown passed")
        return admission

    def admit_now(self, name: str, policy: BreakerPolicy | None) -> Admission:
        """`admit` on the memory store (`sync`), without awaiting."""
        if policy is None:
            return Admission.ALLOW
        assert self._memory is not None
        states = self._memory.states
        before = states.get(name, CLOSED_STATE)
        after, admission = admit(before, policy, self._clock.time())
        if after is not before:
            states[name] = after
            self._emit(name, before, after, "cooldown passed")
        return admission

    def closed_now(self, name: str, policy: BreakerPolicy | None) -> bool:
        """The breaker of `name` is known closed (or off) without I/O: `admit` would ALLOW
        without changing anything, so a caller may skip it. False also when only the store
        can tell (a remote store's view is stale, or the store is failing)."""
        if policy is None:
            return True
        if self._memory is not None:
            return self._memory.states.get(name, CLOSED_STATE).status == CLOSED
        if self._peek is None or self._degraded:
            return False
        state = self._peek(name)
        return state is not None and state.status == CLOSED

    async def record(
        self,
        name: str,
        policy: BreakerPolicy | None,
        outcome: Outcome,
        *,
        probe: bool,
        why: str = "",
    ) -> None:
        if policy is None:
            return
        if self._memory is not None:
            self.record_now(name, policy, outcome, probe=probe, why=why)
            return
        step = _record_step(policy, self._clock.time(), outcome, probe)
        before, after = await self._apply(name, step, policy.state_ttl_s)
        self._emit(name, before, after, why or outcome.value)

    def record_now(
        self,
        name: str,
        policy: BreakerPolicy | None,
        outcome: Outcome,
        *,
        probe: bool,
        why: str = "",
    ) -> None:
        """`record` on the memory store (`sync`), without awaiting."""
        if policy is None:
            return
        assert self._memory is not None
        states = self._memory.states
        before = states.get(name, CLOSED_STATE)
        after = record(before, policy, self._clock.time(), outcome, probe=probe)
        if after is not before:
            states[name] = after
            if before.status != CLOSED or after.status != CLOSED:  # closed to closed: no event
                self._emit(name, before, after, why or outcome.value)

    def succeeded_now(self, name: str, policy: BreakerPolicy | None) -> bool:
        """`record(name, policy, Outcome.SUCCESS, probe=False)`, the end of nearly every call,
        without awaiting: at a third of `record_now`'s cost on the memory store; on a store with
        `try_update`, when that needs no I/O. False when it could not be done so: await `record`
        then."""
        if policy is None:
            return True
        if self._memory is None:
            if self._try is None or self._degraded:
                return False
            step = _record_step(policy, self._clock.time(), Outcome.SUCCESS, False)
            done = self._try(name, step)
            if done is None:
                return False
            self._emit(name, *done[0], Outcome.SUCCESS.value)
            return True
        states = self._memory.states
        before = states.get(name, CLOSED_STATE)
        if before.status != CLOSED:
            self.record_now(name, policy, Outcome.SUCCESS, probe=False)
            return True
        states[name] = record_success(before, policy, self._clock.time())  # closed stays closed
        return True

    async def state(self, name: str) -> BreakerState:
        try:
            return await self.store.load(name)
        except Unavailable:
            return await self._local.load(name)

    async def aclose(self) -> None:
        await self.store.aclose()


def _admit_step(
    policy: BreakerPolicy, now: float
) -> Update[tuple[BreakerState, BreakerState, Admission]]:
    def step(
        state: BreakerState,
    ) -> tuple[BreakerState, tuple[BreakerState, BreakerState, Admission]]:
        new, admission = admit(state, policy, now)
        return new, (state, new, admission)

    return step


def _record_step(
    policy: BreakerPolicy, now: float, outcome: Outcome, probe: bool
) -> Update[tuple[BreakerState, BreakerState]]:
    def step(state: BreakerState) -> tuple[BreakerState, tuple[BreakerState, BreakerState]]:
        new = record(state, policy, now, outcome, probe=probe)
        return new, (state, new)

    return step
