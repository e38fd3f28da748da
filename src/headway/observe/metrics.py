"""Prometheus metrics, fed by the observe stage and by events; one registry per Gateway.

Latency histograms are labelled by deployment and by input-token bucket, so P50/P95/P99 per model
and per prompt size come from `histogram_quantile` over them. Label children are cached: recording a
call costs a few dictionary lookups, not label building.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values

from headway.observe.events import Event, EventBus

INPUT_BUCKETS: tuple[tuple[int, str], ...] = (
    (1_000, "lt1k"),
    (4_000, "1k-4k"),
    (16_000, "4k-16k"),
    (64_000, "16k-64k"),
)


class _Number:
    """A child's number without prometheus_client's lock, shared by the child (which reads it
    at scrape time through `get`) and the tally that counts into it. Only the event loop's
    thread counts into it, and a float attribute is read whole, so the lock bought nothing:
    it was two of the three Python calls an `inc` made."""

    __slots__ = ("exemplar", "value")

    def __init__(self, value: float) -> None:
        self.value = value
        self.exemplar: object = None

    def inc(self, amount: float) -> None:
        self.value += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self.value = value

    def get(self) -> float:
        return self.value

    def set_exemplar(self, exemplar: object) -> None:
        self.exemplar = exemplar

    def get_exemplar(self) -> object:
        return self.exemplar


def _lock_free(value: object) -> _Number | None:
    """`value` as a `_Number` when it is the plain in-process kind (not the mmap-backed one
    that multiprocess mode shares between processes, which stays as it is)."""
    if not isinstance(value, values.MutexValue):
        return None
    return _Number(float(value._value))


class CounterTally:
    """Counts into one labelled counter child, as `child.inc` would (same float additions, in
    the same order), in one Python call."""

    __slots__ = ("_child", "_number")

    def __init__(self, child: Counter) -> None:
        self._child = child
        self._number = _lock_free(child._value)
        if self._number is not None:
            child._value = self._number

    def inc(self, amount: float = 1) -> None:
        number = self._number
        if number is None or amount < 0:
            self._child.inc(amount)  # multiprocess values; negative amounts raise there
        else:
            number.value += amount


class HistogramTally:
    """Observes into one labelled histogram child, as `child.observe` would."""

    __slots__ = ("_bounds", "_buckets", "_child", "_sum")

    def __init__(self, child: Histogram) -> None:
        self._child = child
        self._bounds: list[float] = child._upper_bounds
        total = _lock_free(child._sum)
        buckets = [_lock_free(b) for b in child._buckets]
        self._sum: _Number | None = None
        self._buckets: list[_Number] = []
        if total is not None and all(b is not None for b in buckets):
            child._sum = self._sum = total
            child._buckets = self._buckets = [b for b in buckets if b is not None]

    def observe(self, amount: float) -> None:
        total = self._sum
        if total is None:
            self._child.observe(amount)
            return
        total.value += amount
        # the first bucket whose bound is >= amount (the last bound is +Inf); NaN lands in none
        i = bisect_left(self._bounds, amount)
        if amount <= self._bounds[i]:
            self._buckets[i].value += 1


T = TypeVar("T", CounterTally, HistogramTally)


class Children(Generic[T]):
    """The tallies of one labelled metric's children, by label values.

    `metric.labels(...)` validates and re-keys its arguments on every call (a few microseconds,
    five times a call), and a child's `inc` takes a lock; a child never changes once created, so
    it is looked up once per label tuple and counted into through a tally. Children are created
    on first use exactly as `labels` would, so the exposed series are the same."""

    __slots__ = ("_by", "_make", "_metric")

    def __init__(self, metric: Counter | Histogram, make: Callable[[Any], T]) -> None:
        self._metric = metric
        self._make: Callable[[Any], T] = make
        self._by: dict[tuple[str, ...], T] = {}

    def __call__(self, *values: str) -> T:
        tally = self._by.get(values)
        if tally is None:
            tally = self._by[values] = self._make(self._metric.labels(*values))
        return tally


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
        # what the observe stage records per call, through cached tallies
        self.requests_of = Children(self.requests, CounterTally)
        self.latency_of = Children(self.latency, HistogramTally)
        self.ttft_of = Children(self.ttft, HistogramTally)
        self.tokens_of = Children(self.tokens, CounterTally)
        self.cost_of = Children(self.cost, CounterTally)
        self.cache_savings_of = Children(self.cache_savings, CounterTally)
        self.degraded_of = Children(self.degraded, CounterTally)

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
