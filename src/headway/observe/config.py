"""Config section `observe`: Prometheus metrics and the events they listen to."""

from __future__ import annotations

from pydantic import Field

from headway.config.base import StrictModel


class ObserveConfig(StrictModel):
    #: Prometheus metrics at /metrics (on by default: recording costs about a microsecond a call)
    metrics: bool = True
    #: latency histogram buckets, seconds
    latency_buckets: tuple[float, ...] = Field(
        default=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
    )
