"""Retry decisions as pure functions of values, and the route-wide retry budget.

Retries are bounded twice: per call (`max_attempts` over every deployment, `retries_per_deployment`
re-sends to one) and per route over time (`RetryBudget`: re-sends are at most `ratio` of the calls
in a sliding window, plus a small floor), so an upstream outage can never turn into a retry storm
or a runaway bill. The engine decides; the chain does the waiting on its Clock.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from headway.routing.config import RetryConfig


class Action(enum.Enum):
    RETRY = "retry"  # send the same request to the same deployment after `delay`
    FALLBACK = "fallback"  # move on to the next deployment of the chain
    FAIL = "fail"  # stop: give the caller the error


@dataclass(slots=True, frozen=True)
class Decision:
    action: Action
    delay: float = 0.0
    reason: str = ""


@dataclass(slots=True, frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    retries_per_deployment: int = 1
    backoff_base_s: float = 0.25
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 30.0

    @classmethod
    def from_config(cls, cfg: RetryConfig, members: int = 1) -> RetryPolicy:
        """With `prefer_fallback`, a chain of several deployments falls over instead of re-sending:
        a failing member's load moves on without waiting out a backoff. Re-sends then apply to
        single-deployment routes only."""
        retries = cfg.retries_per_deployment
        if cfg.prefer_fallback and members > 1:
            retries = 0
        return cls(
            max_attempts=cfg.max_attempts,
            retries_per_deployment=retries,
            backoff_base_s=cfg.backoff_base_s,
            backoff_max_s=cfg.backoff_max_s,
            max_retry_after_s=cfg.max_retry_after_s,
        )


def backoff(policy: RetryPolicy, retries_done: int, u: float) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(max, base * 2**n)).
    `u` is a uniform draw in [0, 1), passed in so the function stays pure."""
    cap = min(policy.backoff_max_s, policy.backoff_base_s * (2.0**retries_done))
    return u * cap


@dataclass(slots=True, frozen=True)
class Failure:
    """What the decision needs to know about a failed attempt (from the error tree)."""

    retryable: bool
    fallback_eligible: bool
    retry_after: float | None = None


def decide(
    failure: Failure,
    policy: RetryPolicy,
    *,
    retries_here: int,
    attempts: int,
    has_next: bool,
    now: float,
    deadline: float | None,
    budget_ok: bool,
    u: float,
) -> Decision:
    """What to do after an attempt failed. `retries_here`: re-sends already made to this
    deployment; `attempts`: attempts made by the call so far; `has_next`: another member of the
    chain could take the call; `budget_ok`: the route's retry budget has room for one re-send."""
    if not failure.retryable and not failure.fallback_eligible:
        return Decision(Action.FAIL, reason="cannot succeed on any deployment")
    if attempts >= policy.max_attempts:
        return Decision(Action.FAIL, reason="attempt budget exhausted")
    reason = "not retryable here"
    if failure.retryable:
        if retries_here >= policy.retries_per_deployment:
            reason = "retries for this deployment used"
        elif failure.retry_after is not None and failure.retry_after > policy.max_retry_after_s:
            reason = "retry-after too long"
        elif not budget_ok:
            reason = "retry budget exhausted"
        else:
            if failure.retry_after is not None:
                delay = max(0.0, failure.retry_after)
            else:
                delay = backoff(policy, retries_here, u)
            if deadline is None or now + delay < deadline:
                return Decision(Action.RETRY, delay, "retryable")
            reason = "the wait would pass the deadline"
    if failure.fallback_eligible and has_next:
        return Decision(Action.FALLBACK, reason=reason)
    return Decision(Action.FAIL, reason=reason)


class RetryBudget:
    """Re-sends may be at most `ratio` of the calls seen over `window_s`, plus `min_retries`.

    Counts live in a few time buckets; every method takes `now` (monotonic seconds). One budget
    per route and process: N replicas allow at most N times the floor, and the ratio holds."""

    __slots__ = ("_buckets", "_retries", "_span", "_width", "min_retries", "ratio", "window_s")

    def __init__(self, ratio: float, window_s: float, min_retries: int, buckets: int = 10) -> None:
        self.ratio = ratio
        self.window_s = window_s
        self.min_retries = min_retries
        self._width = window_s / buckets
        #: buckets per window (computed once: `_bucket` runs on every call)
        self._span = round(window_s / self._width) - 1
        #: (bucket index, calls, retries)
        self._buckets: deque[list[int]] = deque()

    @classmethod
    def from_config(cls, cfg: RetryConfig) -> RetryBudget:
        return cls(cfg.budget_ratio, cfg.budget_window_s, cfg.budget_min_retries)

    def _bucket(self, now: float) -> list[int]:
        idx = int(now // self._width)
        buckets = self._buckets
        if buckets:
            last = buckets[-1]
            if last[0] == idx and buckets[0][0] >= idx - self._span:
                return last  # the common case: the newest bucket, nothing expired
        oldest = idx - self._span
        while buckets and buckets[0][0] < oldest:
            buckets.popleft()
        if not buckets or buckets[-1][0] != idx:
            buckets.append([idx, 0, 0])
        return buckets[-1]

    def counts(self, now: float) -> tuple[int, int]:
        """(calls, retries) in the window ending at `now`."""
        self._bucket(now)
        return sum(b[1] for b in self._buckets), sum(b[2] for b in self._buckets)

    def record_call(self, now: float) -> None:
        # `_bucket`'s common case inline (every call passes here): the newest bucket, nothing
        # expired
        idx = int(now // self._width)
        buckets = self._buckets
        if buckets:
            last = buckets[-1]
            if last[0] == idx and buckets[0][0] >= idx - self._span:
                last[1] += 1
                return
        self._bucket(now)[1] += 1

    def can_retry(self, now: float) -> bool:
        calls, retries = self.counts(now)
        return retries < self.min_retries + self.ratio * calls

    def record_retry(self, now: float) -> None:
        self._bucket(now)[2] += 1
