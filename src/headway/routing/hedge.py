"""When to hedge: a deployment's observed time to first token, and the delay it implies.

A hedge is sent when no first token has arrived by the deployment's observed quantile (P95 by
default) of time to first token; until enough samples exist, a configured initial delay applies.
Samples live in a small ring per deployment; the quantile is recomputed only every few samples, so
asking for it on each call costs a lookup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from headway.routing.config import HedgeConfig


class LatencyWindow:
    """The last `size` latencies of one deployment, with a cached quantile."""

    __slots__ = ("_cache", "_dirty", "_next", "_samples", "size")

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._samples: list[float] = []
        self._next = 0
        self._dirty = 0
        self._cache: dict[float, float] = {}

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, seconds: float) -> None:
        if len(self._samples) < self.size:
            self._samples.append(seconds)
        else:
            self._samples[self._next] = seconds
            self._next = (self._next + 1) % self.size
        self._dirty += 1
        if self._dirty >= 8 or len(self._samples) < 64:
            self._cache.clear()
            self._dirty = 0

    def quantile(self, q: float) -> float | None:
        """The `q` quantile (nearest rank) of the samples held, or None when there are none."""
        if not self._samples:
            return None
        cached = self._cache.get(q)
        if cached is not None:
            return cached
        ordered = sorted(self._samples)
        rank = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
        value = ordered[rank]
        self._cache[q] = value
        return value


@dataclass(slots=True, frozen=True)
class HedgePolicy:
    quantile: float = 0.95
    min_samples: int = 20
    initial_delay_s: float = 2.0
    min_delay_s: float = 0.05

    @classmethod
    def from_config(cls, cfg: HedgeConfig) -> HedgePolicy | None:
        if not cfg.enabled:
            return None
        return cls(cfg.quantile, cfg.min_samples, cfg.initial_delay_s, cfg.min_delay_s)


def hedge_delay(policy: HedgePolicy, window: LatencyWindow | None) -> float:
    """Seconds to wait for a first token before sending the hedge."""
    if window is None or len(window) < policy.min_samples:
        return policy.initial_delay_s
    q = window.quantile(policy.quantile)
    if q is None:
        return policy.initial_delay_s
    return max(policy.min_delay_s, q)


def should_hedge(
    policy: HedgePolicy | None, *, waited: float, first_token: bool, delay: float
) -> bool:
    """The trigger itself: hedging is on, no first token yet, and the delay has passed."""
    return policy is not None and not first_token and waited >= delay
