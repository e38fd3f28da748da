"""What each deployment's provider says it has left, learned from its rate-limit headers.

Providers report remaining requests and tokens and when each bucket is full again
(`RateLimitSnapshot`, delivered through `AttemptContext.on_ratelimit`). Between two snapshots the
view assumes a linear refill from `remaining` at `observed_at` to `limit` at the reset time, and
subtracts what this process has sent since the snapshot. A deployment that cannot take a call now
is skipped, or the call waits: headway never sends a request the provider will certainly reject.

The view is per process and advisory: once a snapshot's reset time has passed it says nothing.
The routing terminal wires it with `AttemptContext(on_ratelimit=capacity.hook(deployment))`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from headway.limits.estimate import Demand
from headway.providers.base import RateLimitSnapshot


def wait_for(
    need: int,
    limit: int | None,
    remaining: int | None,
    observed: float,
    reset_at: float | None,
    debit: int,
    now: float,
) -> float:
    """Seconds from `now` until `need` units fit, per one reported bucket (0 = they fit now)."""
    if remaining is None or reset_at is None or now >= reset_at or need <= 0:
        return 0.0
    if limit is not None and need > limit:
        return 0.0  # it can never fit: let the provider answer rather than wait forever
    span = reset_at - observed
    if limit is None or limit <= remaining or span <= 0:
        return 0.0 if remaining - debit >= need else reset_at - now
    rate = (limit - remaining) / span
    available = remaining + rate * (max(now, observed) - observed) - debit
    if available >= need:
        return 0.0
    ready = max(now, observed) + (need - available) / rate
    return min(ready, reset_at) - now if need + debit <= limit else reset_at - now


@dataclass(slots=True)
class _View:
    snap: RateLimitSnapshot
    requests: int = 0
    tokens: int = 0
    input: int = 0
    output: int = 0
    #: from then on no bucket of the snapshot can make a call wait (`wait_for` is 0 for each
    #: bucket without a reset time or past it): read per call, so worked out once
    quiet_from: float = field(init=False)

    def __post_init__(self) -> None:
        s = self.snap
        # max() of the known ones in a loop, not a comprehension: a view is made per response
        quiet: float | None = None
        for r in (
            s.reset_requests_at,
            s.reset_tokens_at,
            s.reset_input_tokens_at,
            s.reset_output_tokens_at,
        ):
            if r is not None and (quiet is None or r > quiet):
                quiet = r
        self.quiet_from = quiet if quiet is not None else -math.inf


class CapacityView:
    def __init__(self) -> None:
        self._views: dict[str, _View] = {}
        self._hooks: dict[str, Callable[[RateLimitSnapshot], None]] = {}

    def observe(self, deployment: str, snap: RateLimitSnapshot) -> None:
        current = self._views.get(deployment)
        if current is None or snap.observed_at >= current.snap.observed_at:
            self._views[deployment] = _View(snap)

    def hook(self, deployment: str) -> Callable[[RateLimitSnapshot], None]:
        """The `on_ratelimit` callback for attempts at `deployment` (one per deployment)."""
        hook = self._hooks.get(deployment)
        if hook is None:

            def hook(snap: RateLimitSnapshot) -> None:
                self.observe(deployment, snap)

            self._hooks[deployment] = hook
        return hook

    def wait(self, deployment: str, demand: Demand, now: float) -> float:
        """Seconds until the provider can take this call (0 = now, or nothing known)."""
        v = self._views.get(deployment)
        if v is None or now >= v.quiet_from:
            return 0.0
        s = v.snap
        o = s.observed_at
        return max(
            wait_for(
                1, s.limit_requests, s.remaining_requests, o, s.reset_requests_at, v.requests, now
            ),
            wait_for(
                demand.total,
                s.limit_tokens,
                s.remaining_tokens,
                o,
                s.reset_tokens_at,
                v.tokens,
                now,
            ),
            wait_for(
                demand.input_tokens,
                s.limit_input_tokens,
                s.remaining_input_tokens,
                o,
                s.reset_input_tokens_at,
                v.input,
                now,
            ),
            wait_for(
                demand.output_tokens,
                s.limit_output_tokens,
                s.remaining_output_tokens,
                o,
                s.reset_output_tokens_at,
                v.output,
                now,
            ),
        )

    def debit(self, deployment: str, demand: Demand) -> None:
        """A call was sent to `deployment` after its last snapshot."""
        v = self._views.get(deployment)
        if v is not None:
            v.requests += 1
            v.tokens += demand.input_tokens + demand.output_tokens  # `total`, without the call
            v.input += demand.input_tokens
            v.output += demand.output_tokens
