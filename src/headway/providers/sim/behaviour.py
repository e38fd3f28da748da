"""How the sim behaves right now (`SimControl`), what it has done (`SimStats`), and its errors.

Settings (`SimSettings` in config/schema.py; every field can be changed while running through
`SimControl.update`):

- latency: `latency_p50_ms`/`latency_p99_ms` (whole non-streamed answer, lognormal),
  `ttft_p50_ms` (first streamed token, same tail shape), `ms_per_token` (stream pacing).
  All zero: the sim answers without waiting at all.
- limits: `rpm`, `tpm` (see ratelimit.py), `default_max_tokens` (the up-front charge for a
  request that names no cap).
- failures: `error_rate` (seeded by `seed`) answering `error_status`; `outages` (windows of
  `[start_s, end_s]` after the sim starts, answering 503); `hang` (no answer until the caller's
  deadline or cancellation); `slow_ms` (added before the first byte); stream faults after N output
  tokens: `cut_after_tokens` (the connection drops), `stall_after_tokens` + `stall_s` (a pause),
  `malformed_after_tokens` (an unparseable chunk), `error_after_tokens` (an in-band error event).
  `fault_requests`: the failures (not limits or outages) apply only to the next N requests.
- `prefill`: accept a trailing assistant message (else 400).
- content: `answer_tokens_min/max`, `encoding`, `embedding_dim` (see generate.py, embed.py).
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Any, Literal

from headway.clock import Clock
from headway.config.schema import SimSettings
from headway.errors import (
    HeadwayError,
    InvalidRequest,
    ModelNotFound,
    PermissionDenied,
    RequestTooLarge,
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamOverloaded,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from headway.providers.sim.latency import LatencyModel
from headway.providers.sim.ratelimit import ProviderLimiter

OUTAGE_STATUS = 503

_BY_STATUS: dict[int, type[HeadwayError]] = {
    400: InvalidRequest,
    401: UpstreamAuthFailed,
    403: PermissionDenied,
    404: ModelNotFound,
    408: UpstreamTimeout,
    413: RequestTooLarge,
    422: InvalidRequest,
    429: UpstreamRateLimited,
    503: UpstreamOverloaded,
    504: UpstreamTimeout,
    529: UpstreamOverloaded,
}


def error_for_status(
    status: int, message: str, *, retry_after: float | None = None
) -> HeadwayError:
    """The error a provider answering `status` is classified as (status kept as upstream_status)."""
    cls = _BY_STATUS.get(status) or (
        UpstreamError if status >= 500 or status == 409 else InvalidRequest
    )
    return cls(message, retry_after=retry_after, provider="sim", upstream_status=status)


@dataclass(slots=True, frozen=True)
class StreamFault:
    """How a stream goes wrong after it started; the engine yields it last, then stops.

    `cut`: the connection drops (no terminator). `malformed`: an unparseable chunk arrives.
    `error`: the provider sends an in-band error event. Each flavour writes these its own way;
    the in-process provider raises `error`."""

    kind: Literal["cut", "malformed", "error"]
    error: HeadwayError


@dataclass(slots=True)
class SimStats:
    requests: int = 0
    chat_requests: int = 0
    stream_requests: int = 0
    embed_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors_injected: int = 0
    outage_errors: int = 0
    rate_limited: int = 0
    prefill_rejected: int = 0
    hangs: int = 0
    cuts: int = 0
    stalls: int = 0
    malformed: int = 0
    in_band_errors: int = 0
    in_flight: int = 0
    max_concurrent: int = 0

    def enter(self) -> None:
        self.in_flight += 1
        if self.in_flight > self.max_concurrent:
            self.max_concurrent = self.in_flight

    def leave(self) -> None:
        self.in_flight -= 1

    def reset(self) -> None:
        in_flight = self.in_flight
        for name in self.__dataclass_fields__:
            setattr(self, name, 0)
        self.in_flight = in_flight

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class SimControl:
    """The sim's behaviour, changeable while requests are in flight."""

    def __init__(self, settings: SimSettings, clock: Clock) -> None:
        self._initial = settings
        self._clock = clock
        self._started = clock.monotonic()
        self.settings = settings
        self.latency = LatencyModel(0, 0)
        self.ttft = LatencyModel(0, 0)
        self.limiter = ProviderLimiter(None, None, self._started)
        self.outages: list[tuple[float, float]] = []
        self.faults_left: int | None = None
        self.rng = random.Random(settings.seed)
        self._apply(settings, fresh=True, base=self._started)

    def _apply(self, new: SimSettings, *, fresh: bool, base: float) -> None:
        old = self.settings
        self.settings = new
        self.latency = LatencyModel(new.latency_p50_ms, new.latency_p99_ms)
        self.ttft = self.latency.scaled(new.ttft_p50_ms)
        if fresh or (new.rpm, new.tpm) != (old.rpm, old.tpm):
            self.limiter = ProviderLimiter(new.rpm, new.tpm, self._clock.monotonic())
        if fresh or new.outages != old.outages:
            self.outages = [(base + s, base + e) for s, e in new.outages]
        if fresh or new.fault_requests != old.fault_requests:
            self.faults_left = new.fault_requests
        if fresh or new.seed != old.seed:
            self.rng = random.Random(new.seed)

    def update(self, **changes: Any) -> SimSettings:
        """Change settings (validated as SimSettings; unknown names raise). `outages` given here
        are relative to now. Limits restart full when `rpm`/`tpm` change."""
        merged = {**self.settings.model_dump(), **changes}
        self._apply(SimSettings.model_validate(merged), fresh=False, base=self._clock.monotonic())
        if "fault_requests" in changes:  # asking again re-arms the count even if unchanged
            self.faults_left = self.settings.fault_requests
        return self.settings

    def reset(self) -> None:
        """Back to the settings the sim was built with: full buckets, no outages added since."""
        self._apply(self._initial, fresh=True, base=self._started)

    def outage(self, duration_s: float | None = None, *, start_in_s: float = 0.0) -> None:
        """Every request answers 503 from `start_in_s` for `duration_s` (None: until cleared)."""
        start = self._clock.monotonic() + start_in_s
        self.outages.append((start, math.inf if duration_s is None else start + duration_s))

    def clear_outages(self) -> None:
        self.outages = []

    def in_outage(self, now: float) -> bool:
        return any(start <= now < end for start, end in self.outages)

    def take_fault(self) -> bool:
        """Whether the configured failures apply to this request (counts down `fault_requests`)."""
        left = self.faults_left
        if left is None:
            return True
        if left <= 0:
            return False
        self.faults_left = left - 1
        return True
