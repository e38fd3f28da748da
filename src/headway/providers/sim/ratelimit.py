"""Provider-side RPM/TPM enforcement, the way OpenAI does it (pure: every method takes `now`).

Two token buckets that refill continuously (a full minute's allowance per 60 s, never above the
limit). A request is admitted only if both have room; it is then charged one request and its
prompt tokens plus its output cap (`max_tokens`) up front, and nothing is refunded afterwards, so a
large cap consumes headroom even when the reply is short. Rejected requests are not charged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

# float refills land a hair short of a whole token; a caller told to wait N s must then fit
_EPS = 1e-6


class TokenBucket:
    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (after `refill`); inf if it never fits."""
        if amount > self.capacity:
            return math.inf
        return max(0.0, (amount - self.level) / self.rate)

    def used(self) -> int:
        return min(int(self.capacity), math.ceil(self.capacity - self.level))

    def full_in(self) -> float:
        return (self.capacity - self.level) / self.rate


@dataclass(slots=True, frozen=True)
class Rejection:
    kind: Literal["requests", "tokens"]
    limit: int
    used: int
    requested: int
    #: seconds until the request would fit; None when it never fits (larger than the limit)
    retry_after: float | None


@dataclass(slots=True, frozen=True)
class LimitState:
    """What OpenAI's six `x-ratelimit-*` headers say. Limits are None when not enforced."""

    limit_requests: int | None
    remaining_requests: int | None
    reset_requests_s: float
    limit_tokens: int | None
    remaining_tokens: int | None
    reset_tokens_s: float


class ProviderLimiter:
    def __init__(self, rpm: int | None, tpm: int | None, now: float) -> None:
        self.requests = TokenBucket(rpm, now) if rpm else None
        self.tokens = TokenBucket(tpm, now) if tpm else None

    def acquire(self, tokens: int, now: float) -> Rejection | None:
        """Charge one request of `tokens` (prompt + output cap) or say why not."""
        req, tok = self.requests, self.tokens
        if req is not None:
            req.refill(now)
            if req.level < 1 - _EPS:
                return Rejection("requests", int(req.capacity), req.used(), 1, req.wait_for(1))
        if tok is not None:
            tok.refill(now)
            if tok.level < tokens - _EPS:
                wait = tok.wait_for(tokens)
                return Rejection(
                    "tokens",
                    int(tok.capacity),
                    tok.used(),
                    tokens,
                    None if math.isinf(wait) else wait,
                )
        if req is not None:
            req.level -= 1
        if tok is not None:
            tok.level -= tokens
        return None

    def state(self, now: float) -> LimitState:
        req, tok = self.requests, self.tokens
        if req is not None:
            req.refill(now)
        if tok is not None:
            tok.refill(now)
        return LimitState(
            int(req.capacity) if req else None,
            max(0, math.floor(req.level)) if req else None,
            req.full_in() if req else 0.0,
            int(tok.capacity) if tok else None,
            max(0, math.floor(tok.level)) if tok else None,
            tok.full_in() if tok else 0.0,
        )


def go_duration(seconds: float) -> str:
    """Seconds as a Go duration string, as OpenAI's reset headers and messages write them:
    `0s`, `12ms`, `1.5s`, `6m0s`, `1h2m3s`."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    ms = round(seconds * 1000)
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
