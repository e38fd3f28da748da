"""The simulated provider: in-process, deterministic, token-exact, with realistic latency, provider
limits and injectable failures. `SimEngine` is the wire-neutral core (also served over HTTP by
headway.providers.fake); `SimProvider` wraps it as a deployment."""

from __future__ import annotations

from headway.providers.sim.behaviour import SimControl, SimStats, StreamFault, error_for_status
from headway.providers.sim.engine import SimEngine
from headway.providers.sim.latency import LatencyModel
from headway.providers.sim.provider import SimProvider, build
from headway.providers.sim.ratelimit import LimitState, ProviderLimiter, go_duration

__all__ = [
    "LatencyModel",
    "LimitState",
    "ProviderLimiter",
    "SimControl",
    "SimEngine",
    "SimProvider",
    "SimStats",
    "StreamFault",
    "build",
    "error_for_status",
    "go_duration",
]
