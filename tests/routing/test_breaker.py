"""The breaker state machine: pure transitions, driven by explicit times."""

from __future__ import annotations

from headway.routing.breaker import (
    CLOSED,
    CLOSED_STATE,
    HALF_OPEN,
    OPEN,
    Admission,
    BreakerPolicy,
    BreakerState,
    Outcome,
    admit,
    record,
    transition,
    window_counts,
)

P = BreakerPolicy(
    consecutive_failures=3,
    error_rate=0.5,
    window_s=10.0,
    min_volume=6,
    cooldown_s=5.0,
    half_open_probes=1,
    close_after=1,
    probe_lease_s=2.0,
)


def fail(s: BreakerState, now: float, probe: bool = False) -> BreakerState:
    return record(s, P, now, Outcome.FAILURE, probe=probe)


def ok(s: BreakerState, now: float, probe: bool = False) -> BreakerState:
    return record(s, P, now, Outcome.SUCCESS, probe=probe)


def test_opens_after_consecutive_failures_and_a_success_resets_the_run() -> None:
    s = fail(fail(CLOSED_STATE, 1.0), 1.1)
    s = ok(s, 1.2)
    assert s.status == CLOSED and s.consecutive == 0
    s = fail(fail(s, 1.3), 1.4)
    assert s.status == CLOSED
    s = fail(s, 1.5)
    assert s.status == OPEN and s.opened_at == 1.5


def test_opens_on_error_rate_only_with_minimum_volume() -> None:
    s = CLOSED_STATE
    # alternate failure/success: never 3 in a row, but a 50% error rate
    for i in range(5):
        s = (fail if i % 2 == 0 else ok)(s, 1.0 + i * 0.1)
    assert s.status == CLOSED  # 5 calls < min_volume 6
    s = ok(s, 1.6)
    assert s.status == CLOSED  # 3 of 6 failed, but the last call succeeded: rate checked on failure
    s = fail(s, 1.7)
    assert s.status == OPEN  # 4 of 7 failed >= 50%


def test_old_calls_leave_the_window() -> None:
    s = CLOSED_STATE
    for i in range(6):
        s = (fail if i % 2 == 0 else ok)(s, 1.0 + i * 0.1)
    assert window_counts(s, P, 1.6) == (6, 3)
    assert window_counts(s, P, 30.0) == (0, 0)
    s = fail(s, 30.0)
    assert s.status == CLOSED  # the old failures no longer count
    assert window_counts(s, P, 30.0) == (1, 1)


def test_open_rejects_until_the_cooldown_then_admits_one_probe() -> None:
    s = BreakerState(status=OPEN, opened_at=10.0)
    s, a = admit(s, P, 14.9)
    assert a is Admission.REJECT and s.status == OPEN
    s, a = admit(s, P, 15.0)
    assert a is Admission.PROBE and s.status == HALF_OPEN and s.probes == 1
    s2, a2 = admit(s, P, 15.1)
    assert a2 is Admission.REJECT  # probe concurrency is 1
    assert s2 == s


def test_half_open_closes_on_probe_success_and_reopens_on_probe_failure() -> None:
    half, _ = admit(BreakerState(status=OPEN, opened_at=0.0), P, 6.0)
    closed = ok(half, 6.5, probe=True)
    assert closed.status == CLOSED and transition(half, closed) == "closed"
    reopened = fail(half, 6.5, probe=True)
    assert reopened.status == OPEN and reopened.opened_at == 6.5
    assert transition(half, reopened) == "opened"


def test_half_open_ignores_calls_that_were_not_probes() -> None:
    half, _ = admit(BreakerState(status=OPEN, opened_at=0.0), P, 6.0)
    assert fail(half, 6.1) == half  # a slow call admitted before the breaker opened
    assert ok(half, 6.1) == half


def test_open_ignores_late_outcomes() -> None:
    s = BreakerState(status=OPEN, opened_at=1.0)
    assert fail(s, 2.0) == s and ok(s, 2.0) == s


def test_several_probe_successes_may_be_required() -> None:
    p = BreakerPolicy(cooldown_s=1.0, half_open_probes=2, close_after=2)
    s, a1 = admit(BreakerState(status=OPEN, opened_at=0.0), p, 1.0)
    s, a2 = admit(s, p, 1.0)
    s, a3 = admit(s, p, 1.0)
    assert (a1, a2, a3) == (Admission.PROBE, Admission.PROBE, Admission.REJECT)
    s = record(s, p, 1.1, Outcome.SUCCESS, probe=True)
    assert s.status == HALF_OPEN and s.probes == 1
    s = record(s, p, 1.2, Outcome.SUCCESS, probe=True)
    assert s.status == CLOSED


def test_a_lost_probe_frees_its_slot_after_the_lease() -> None:
    s, _ = admit(BreakerState(status=OPEN, opened_at=0.0), P, 5.0)
    _, a = admit(s, P, 6.9)
    assert a is Admission.REJECT
    s, a = admit(s, P, 7.0)
    assert a is Admission.PROBE and s.probes == 1


def test_a_released_probe_frees_its_slot_without_a_verdict() -> None:
    s, _ = admit(BreakerState(status=OPEN, opened_at=0.0), P, 5.0)
    s = record(s, P, 5.1, Outcome.RELEASE, probe=True)
    assert s.status == HALF_OPEN and s.probes == 0
    _, a = admit(s, P, 5.2)
    assert a is Admission.PROBE


def test_state_round_trips_through_json() -> None:
    s = fail(fail(CLOSED_STATE, 1.0), 2.5)
    assert BreakerState.from_json(s.to_json()) == s
    half, _ = admit(BreakerState(status=OPEN, opened_at=3.0), P, 9.0)
    assert BreakerState.from_json(half.to_json()) == half


def test_transition_names() -> None:
    opened = BreakerState(status=OPEN, opened_at=1.0)
    assert transition(CLOSED_STATE, opened) == "opened"
    assert transition(opened, BreakerState(status=HALF_OPEN)) == "half_opened"
    assert transition(CLOSED_STATE, BreakerState(consecutive=2)) is None
