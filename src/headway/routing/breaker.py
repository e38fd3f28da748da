"""The circuit breaker as a pure state machine: a state value, a policy value, `now` in, a new
state out. No clock, no I/O, no locks: storage (memory or Redis, shared across replicas) and events
live in `headway.routing.breakers`, which applies these functions atomically.

    closed --(N failures in a row | error rate over the window, with volume)--> open
    open --(cooldown passed, next admission)--> half_open (that admission is a probe)
    half_open --(close_after probe successes)--> closed
    half_open --(a probe fails)--> open

While half-open at most `half_open_probes` probes are in flight; a probe whose outcome never comes
back (its caller vanished) frees its slot after `probe_lease_s`. Outcomes of calls admitted before a
transition (a slow call finishing after the breaker opened) are ignored: only probes decide a
half-open breaker, and an open breaker has nothing to count.

Times are wall-clock seconds (`Clock.time()`), so replicas sharing a state agree on them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

from headway.routing.config import BreakerConfig

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

#: the error-rate window is kept as this many buckets, so a state stays small and serialisable
BUCKETS = 10


class Admission(enum.Enum):
    ALLOW = "allow"
    PROBE = "probe"
    REJECT = "reject"


class Outcome(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    #: the call ended with no verdict on the deployment (cancelled, lost a hedge race)
    RELEASE = "release"


@dataclass(slots=True, frozen=True)
class BreakerPolicy:
    consecutive_failures: int = 5
    error_rate: float = 0.5
    window_s: float = 60.0
    min_volume: int = 20
    cooldown_s: float = 30.0
    half_open_probes: int = 1
    close_after: int = 1
    probe_lease_s: float = 120.0
    #: window_s / BUCKETS: the width of one error-rate bucket
    bucket_s: float = field(init=False, repr=False, compare=False)
    #: how long a stored state stays meaningful: past this it is as good as a fresh one
    state_ttl_s: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # derived once here: both are read on every admission and every recorded outcome
        object.__setattr__(self, "bucket_s", self.window_s / BUCKETS)
        ttl = max(self.window_s, self.cooldown_s + self.probe_lease_s) * 2
        object.__setattr__(self, "state_ttl_s", ttl)

    @classmethod
    def from_config(cls, cfg: BreakerConfig, probe_lease_s: float) -> BreakerPolicy:
        return cls(
            consecutive_failures=cfg.consecutive_failures,
            error_rate=cfg.error_rate,
            window_s=cfg.window_s,
            min_volume=cfg.min_volume,
            cooldown_s=cfg.cooldown_s,
            half_open_probes=cfg.half_open_probes,
            close_after=cfg.close_after,
            probe_lease_s=probe_lease_s,
        )


@dataclass(slots=True)
class BreakerState:
    """A value: never changed once built (the functions below return new ones). Not declared
    frozen because every successful call builds one, and a frozen dataclass's `__init__` costs
    several times a plain one's."""

    status: str = CLOSED
    consecutive: int = 0
    #: (bucket index, calls, failures), oldest first; index = floor(now / bucket_s)
    buckets: tuple[tuple[int, int, int], ...] = ()
    opened_at: float = 0.0
    probes: int = 0
    probe_ok: int = 0
    probe_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "s": self.status,
            "c": self.consecutive,
            "b": [list(b) for b in self.buckets],
            "o": self.opened_at,
            "p": self.probes,
            "k": self.probe_ok,
            "t": self.probe_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BreakerState:
        return cls(
            status=str(data.get("s", CLOSED)),
            consecutive=int(data.get("c", 0)),
            buckets=tuple((int(b[0]), int(b[1]), int(b[2])) for b in data.get("b", ())),
            opened_at=float(data.get("o", 0.0)),
            probes=int(data.get("p", 0)),
            probe_ok=int(data.get("k", 0)),
            probe_at=float(data.get("t", 0.0)),
        )


CLOSED_STATE = BreakerState()


def window_counts(state: BreakerState, policy: BreakerPolicy, now: float) -> tuple[int, int]:
    """(calls, failures) inside the window ending at `now`."""
    oldest = int(now // policy.bucket_s) - BUCKETS + 1
    calls = failures = 0
    for idx, n, f in state.buckets:
        if idx >= oldest:
            calls += n
            failures += f
    return calls, failures


def _count(
    state: BreakerState, policy: BreakerPolicy, now: float, failed: bool
) -> tuple[tuple[int, int, int], ...]:
    idx = int(now // policy.bucket_s)
    oldest = idx - BUCKETS + 1
    buckets = state.buckets
    if buckets and buckets[-1][0] == idx and buckets[0][0] >= oldest:
        # the common case, every call of a busy deployment: only the newest bucket changes
        _, n, f = buckets[-1]
        return (*buckets[:-1], (idx, n + 1, f + failed))
    kept = [b for b in buckets if b[0] >= oldest]
    if kept and kept[-1][0] == idx:
        _, n, f = kept[-1]
        kept[-1] = (idx, n + 1, f + int(failed))
    else:
        kept.append((idx, 1, int(failed)))
    return tuple(kept)


def _open(now: float) -> BreakerState:
    return BreakerState(status=OPEN, opened_at=now)


def admit(state: BreakerState, policy: BreakerPolicy, now: float) -> tuple[BreakerState, Admission]:
    """May a call go to this deployment now? A PROBE admission must report its outcome with
    `probe=True` (or RELEASE it)."""
    if state.status == CLOSED:
        return state, Admission.ALLOW
    if state.status == OPEN:
        if now < state.opened_at + policy.cooldown_s:
            return state, Admission.REJECT
        half = BreakerState(status=HALF_OPEN, opened_at=state.opened_at, probes=1, probe_at=now)
        return half, Admission.PROBE
    probes = state.probes
    if probes and now - state.probe_at >= policy.probe_lease_s:
        probes = 0  # the probes in flight never reported back: their slots are free again
    if probes >= policy.half_open_probes:
        return state, Admission.REJECT
    return replace(state, probes=probes + 1, probe_at=now), Admission.PROBE


def record(
    state: BreakerState, policy: BreakerPolicy, now: float, outcome: Outcome, *, probe: bool
) -> BreakerState:
    """The state after a call admitted by `admit` ended with `outcome`."""
    if state.status == HALF_OPEN:
        if not probe:
            return state
        probes = max(0, state.probes - 1)
        if outcome is Outcome.FAILURE:
            return _open(now)
        if outcome is Outcome.RELEASE:
            return replace(state, probes=probes)
        ok = state.probe_ok + 1
        if ok >= policy.close_after:
            return CLOSED_STATE
        return replace(state, probes=probes, probe_ok=ok)
    if state.status == OPEN or outcome is Outcome.RELEASE:
        return state
    failed = outcome is Outcome.FAILURE
    buckets = _count(state, policy, now, failed)
    if not failed:
        return BreakerState(CLOSED, 0, buckets)
    consecutive = state.consecutive + 1
    if consecutive >= policy.consecutive_failures:
        return _open(now)
    counted = BreakerState(consecutive=consecutive, buckets=buckets)
    calls, failures = window_counts(counted, policy, now)
    if calls >= policy.min_volume and failures >= policy.error_rate * calls:
        return _open(now)
    return counted


def record_success(state: BreakerState, policy: BreakerPolicy, now: float) -> BreakerState:
    """`record(state, policy, now, Outcome.SUCCESS, probe=False)`: the outcome of nearly every
    call, without `record`'s dispatch (reading an `Outcome` member costs ~1,000 instructions)."""
    if state.status != CLOSED:
        return record(state, policy, now, Outcome.SUCCESS, probe=False)
    idx = int(now // policy.bucket_s)
    buckets = state.buckets
    if buckets and buckets[-1][0] == idx and buckets[0][0] > idx - BUCKETS:
        # `_count`'s common case inline: only the newest bucket changes (a concatenation, not
        # `(*head, last)`, which builds a list first: ~450 instructions fewer)
        _, n, f = buckets[-1]
        return BreakerState(CLOSED, 0, buckets[:-1] + ((idx, n + 1, f),))  # noqa: RUF005
    return BreakerState(CLOSED, 0, _count(state, policy, now, False))


def transition(before: BreakerState, after: BreakerState) -> str | None:
    """The event a change of state amounts to: "opened", "half_opened", "closed" or None."""
    if before.status == after.status:
        if after.status == OPEN and after.opened_at != before.opened_at:
            return "opened"
        return None
    return {OPEN: "opened", HALF_OPEN: "half_opened", CLOSED: "closed"}[after.status]
