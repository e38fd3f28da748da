"""The latency model: lognormal, which gives real providers' heavy tail with two numbers.

A lognormal with median `p50` has its 99th percentile at `p50 * exp(2.3263 * sigma)`, so sigma
follows from the P50:P99 ratio (1:10 by default, as observed on hosted LLM APIs). Sampling takes
an RNG so the engine's draws are seeded and tests can sample the model directly, without waiting.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

Z99 = 2.3263478740408408  # the standard normal's 99th percentile


@dataclass(slots=True, frozen=True)
class LatencyModel:
    """Lognormal seconds with the given median and 99th percentile (milliseconds in, seconds out).

    `p50_ms == 0` means no latency at all; `p99_ms <= p50_ms` means a constant `p50_ms`."""

    p50_ms: float
    p99_ms: float

    @property
    def mu(self) -> float:
        return math.log(self.p50_ms / 1000.0) if self.p50_ms > 0 else -math.inf

    @property
    def sigma(self) -> float:
        if self.p50_ms <= 0 or self.p99_ms <= self.p50_ms:
            return 0.0
        return math.log(self.p99_ms / self.p50_ms) / Z99

    def sample(self, rng: random.Random) -> float:
        if self.p50_ms <= 0:
            return 0.0
        sigma = self.sigma
        if sigma == 0.0:
            return self.p50_ms / 1000.0
        return rng.lognormvariate(self.mu, sigma)

    def scaled(self, p50_ms: float) -> LatencyModel:
        """The same tail shape (P50:P99 ratio) around another median, e.g. for TTFT."""
        if self.p50_ms <= 0 or self.p99_ms <= self.p50_ms:
            return LatencyModel(p50_ms, p50_ms)
        return LatencyModel(p50_ms, p50_ms * self.p99_ms / self.p50_ms)
