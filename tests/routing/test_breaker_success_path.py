"""The success path every answered call takes (`record_success`, `Breakers.succeeded_now`) gives
exactly the state the general `record` / `record_now` give, in every breaker state."""

from __future__ import annotations

from headway.clock import FakeClock
from headway.observe.events import Event, EventBus
from headway.routing.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerPolicy,
    BreakerState,
    Outcome,
    record,
    record_success,
)
from headway.routing.breakers import Breakers, MemoryBreakerStore

POLICY = BreakerPolicy(window_s=60.0, close_after=2)
NOW = 1_767_225_600.0

STATES = [
    BreakerState(),
    BreakerState(buckets=((int(NOW // POLICY.bucket_s), 4, 1),)),  # the newest bucket is current
    BreakerState(consecutive=2, buckets=((int(NOW // POLICY.bucket_s) - 3, 7, 2),)),
    BreakerState(buckets=((int(NOW // POLICY.bucket_s) - 20, 3, 0),)),  # fell out of the window
    BreakerState(status=OPEN, opened_at=NOW - 5),
    BreakerState(status=HALF_OPEN, opened_at=NOW - 40, probes=1, probe_at=NOW - 1),
    BreakerState(status=HALF_OPEN, opened_at=NOW - 40, probes=1, probe_ok=1, probe_at=NOW - 1),
]


def test_record_success_is_record_of_a_success() -> None:
    for state in STATES:
        for now in (NOW, NOW + 0.5, NOW + 7.0, NOW + 600.0):
            assert record_success(state, POLICY, now) == record(
                state, POLICY, now, Outcome.SUCCESS, probe=False
            )


def _breakers() -> tuple[Breakers, MemoryBreakerStore, list[Event]]:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(None, events.append)
    store = MemoryBreakerStore()
    return Breakers(store, FakeClock(NOW), bus), store, events


def test_succeeded_now_is_record_now_of_a_success() -> None:
    for state in [*STATES, None]:
        fast, fast_store, fast_events = _breakers()
        slow, slow_store, slow_events = _breakers()
        if state is not None:
            fast_store.states["d"] = slow_store.states["d"] = state
        for _ in range(3):
            fast.succeeded_now("d", POLICY)
            slow.record_now("d", POLICY, Outcome.SUCCESS, probe=False)
        assert fast_store.states == slow_store.states
        assert [e.kind for e in fast_events] == [e.kind for e in slow_events]
        assert fast_store.states["d"].status in (CLOSED, OPEN, HALF_OPEN)
    off, off_store, _ = _breakers()
    off.succeeded_now("d", None)
    assert off_store.states == {}
