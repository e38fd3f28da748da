"""Prometheus metrics, fed by the observe stage and by events; one registry per Gateway.

Latency histograms are labelled by deployment and by input-token bucket, so P50/P95/P99 per model
and per prompt size come from `histogram_quantile` over them. Label children are cached: recording a
call costs a few dictionary lookups, not label building.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from headway.observe.events import Event, EventBus

INPUT_BUCKETS: tuple[tuple[int, str], ...] = (
    (1_000, "lt1k"),
    (4_000, "1k-4k"),
    (16_000, "4k-16k"),
    (64_000, "16k-64k"),
)


M = TypeVar("M", Counter, Histogram, Gauge)


class Children(Generic[M]):
    """The bound children of one labelled metric, by label values.

    `metric.labels(...)` validates and re-keys its arguments on every call (a few microseconds,
    five times a call); a bound child never changes once created, so it is looked up once per
    label tuple and kept. Children are created on first use exactly as `labels` would, so the
    exposed series are the same."""

    __slots__ = ("_by", "_metric")

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._by: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._by.get(values)
        if child is None:
            child = self._by[values] = self._metric.labels(*values)
        return child


def input_bucket(tokens: int) -> str:
    for bound, name in INPUT_BUCKETS:
        if tokens < bound:
            return name
    return "ge64k"


class Metrics:
    def __init__(self, latency_buckets: Sequence[float]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "headway_requests",
            "Calls served",
            ["route", "deployment", "outcome", "cache"],
            registry=r,
        )
        self.latency = Histogram(
            "headway_request_latency_seconds",
            "Whole-call latency as the caller saw it",
            ["deployment", "input_bucket", "stream"],
            buckets=latency_buckets,
            registry=r,
        )
        self.ttft = Histogram(
            "headway_ttft_seconds",
            "Time to first streamed token",
            ["deployment"],
            buckets=latency_buckets,
            registry=r,
        )
        self.overhead = Histogram(
            "headway_overhead_seconds",
            "Time headway itself added to a call",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05),
            registry=r,
        )
        self.tokens = Counter(
            "headway_tokens", "Tokens by kind", ["deployment", "kind"], registry=r
        )
        self.cost = Counter("headway_cost_usd", "Spend in USD", ["deployment"], registry=r)
        self.cache_savings = Counter(
            "headway_cache_savings_usd", "Spend avoided by cache hits", ["kind"], registry=r
        )
        self.degraded = Counter(
            "headway_degraded", "Degradation ladder steps taken", ["step"], registry=r
        )
        self.events = Counter(
            "headway_events", "Resilience and policy events", ["kind"], registry=r
        )
        self.breaker_open = Gauge(
            "headway_breaker_open",
            "1 while a deployment's breaker is open",
            ["deployment"],
            registry=r,
        )
        # what the observe stage records per call, through cached children
        self.requests_of = Children(self.requests)
        self.latency_of = Children(self.latency)
        self.ttft_of = Children(self.ttft)
        self.tokens_of = Children(self.tokens)
        self.cost_of = Children(self.cost)
        self.cache_savings_of = Children(self.cache_savings)
        self.degraded_of = Children(self.degraded)

    def listen(self, bus: EventBus) -> None:
        # per-call events (`call.settled`) are counted by the observe stage, not here: left out,
        # so emitting them costs nothing when nothing else (the ledger) listens
        bus.subscribe(None, self._on_event, except_prefix="call.")

    def _on_event(self, event: Event) -> None:
        self.events.labels(event.kind).inc()
        deployment = event.data.get("deployment")
        if isinstance(deployment, str):
            if event.kind == "breaker.opened":
                self.breaker_open.labels(deployment).set(1)
            elif event.kind == "breaker.closed":
                self.breaker_open.labels(deployment).set(0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
