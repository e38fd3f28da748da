from __future__ import annotations

from headway.config.load import load
from headway.errors import UpstreamError
from headway.gateway import Gateway
from headway.observe.metrics import Metrics, input_bucket
from headway.types import ChatRequest, Message
from tests.stubs import StubProvider

CONFIG = """
providers: {p: {kind: sim}}
models:
  a: {provider: p, model: a}
  b: {provider: p, model: b}
routes:
  default: {chain: [a, b]}
"""


def _gateway(a: StubProvider, b: StubProvider) -> Gateway:
    return Gateway(load(text=CONFIG), providers={"a": a, "b": b})


def _value(metrics: Metrics, name: str, labels: dict[str, str]) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _req() -> ChatRequest:
    return ChatRequest(model="default", messages=(Message("user", "hello there"),))


async def test_calls_are_counted_per_deployment_and_outcome() -> None:
    gw = _gateway(StubProvider("a", fail=UpstreamError("boom")), StubProvider("b"))
    await gw.chat(_req())
    metrics = gw.services.extras["metrics"]
    assert isinstance(metrics, Metrics)
    labels = {"route": "default", "deployment": "b", "outcome": "ok", "cache": "off"}
    assert _value(metrics, "headway_requests_total", labels) == 1
    assert _value(metrics, "headway_tokens_total", {"deployment": "b", "kind": "input"}) == 5
    await gw.aclose()


async def test_streams_record_ttft_and_latency() -> None:
    gw = _gateway(StubProvider("a"), StubProvider("b"))
    chunks = [c async for c in gw.stream(_req())]
    assert "".join(c.text for c in chunks) == "a: hello there"
    metrics = gw.services.extras["metrics"]
    assert isinstance(metrics, Metrics)
    assert _value(metrics, "headway_ttft_seconds_count", {"deployment": "a"}) == 1
    labels = {"deployment": "a", "input_bucket": "lt1k", "stream": "1"}
    assert _value(metrics, "headway_request_latency_seconds_count", labels) == 1
    assert b"headway_requests_total" in metrics.render()
    await gw.aclose()


async def test_errors_are_counted_with_their_status() -> None:
    gw = _gateway(
        StubProvider("a", fail=UpstreamError("x")), StubProvider("b", fail=UpstreamError("y"))
    )
    try:
        await gw.chat(_req())
    except UpstreamError:
        pass
    metrics = gw.services.extras["metrics"]
    assert isinstance(metrics, Metrics)
    labels = {"route": "default", "deployment": "-", "outcome": "error_502", "cache": "off"}
    assert _value(metrics, "headway_requests_total", labels) == 1
    await gw.aclose()


def test_input_buckets() -> None:
    assert input_bucket(0) == "lt1k"
    assert input_bucket(999) == "lt1k"
    assert input_bucket(1000) == "1k-4k"
    assert input_bucket(70_000) == "ge64k"


def test_cached_children_are_the_labelled_ones() -> None:
    metrics = Metrics((0.1, 1.0))
    child = metrics.tokens_of("d", "input")
    assert metrics.tokens_of("d", "input") is child
    child.inc(3)
    assert _value(metrics, "headway_tokens_total", {"deployment": "d", "kind": "input"}) == 3
    # the tally counts into the labelled child itself: both add to one number
    metrics.tokens.labels("d", "input").inc(2)
    child.inc()
    assert _value(metrics, "headway_tokens_total", {"deployment": "d", "kind": "input"}) == 6
    # no series exists before its first use, as with `labels`
    assert (
        metrics.registry.get_sample_value(
            "headway_tokens_total", {"deployment": "d", "kind": "cached_input"}
        )
        is None
    )


def test_metrics_count_policy_events_but_leave_per_call_events_alone() -> None:
    from headway.observe.events import EventBus

    bus = EventBus()
    metrics = Metrics((0.1, 1.0))
    metrics.listen(bus)
    assert not bus.wants("call.settled")  # nothing is built for it when only metrics listen
    bus.emit("call.settled")
    bus.emit("breaker.opened", deployment="d")
    assert _value(metrics, "headway_events_total", {"kind": "breaker.opened"}) == 1
    assert (
        metrics.registry.get_sample_value("headway_events_total", {"kind": "call.settled"}) is None
    )
    assert _value(metrics, "headway_breaker_open", {"deployment": "d"}) == 1


def _render(metrics: Metrics) -> list[str]:
    # `_created` holds when each child was made: the one line that differs between registries
    return [line for line in metrics.render().decode().splitlines() if "_created" not in line]


def test_tallies_expose_what_prometheus_children_would() -> None:
    """The tallies (lock-free, one call) against the children's own inc/observe: same text."""
    import math

    import pytest

    fast, slow = Metrics((0.1, 0.5, 1.0)), Metrics((0.1, 0.5, 1.0))
    amounts = [0.0, 0.05, 0.1, 0.1000001, 0.5, 0.75, 1.0, 3.0, math.inf, 0.3, 1e-9]
    for i, x in enumerate(amounts):
        fast.latency_of("d", "lt1k", "0").observe(x)
        slow.latency.labels("d", "lt1k", "0").observe(x)
        fast.ttft_of(f"d{i % 2}").observe(x)
        slow.ttft.labels(f"d{i % 2}").observe(x)
        fast.cost_of("d").inc(x / 7 if x != math.inf else 0.1)
        slow.cost.labels("d").inc(x / 7 if x != math.inf else 0.1)
        fast.requests_of("r", "d", "ok", "miss").inc()
        slow.requests.labels("r", "d", "ok", "miss").inc()
        fast.tokens_of("d", "input").inc(i)
        slow.tokens.labels("d", "input").inc(i)
    fast.latency_of("d", "lt1k", "0").observe(math.nan)
    slow.latency.labels("d", "lt1k", "0").observe(math.nan)
    assert _render(fast) == _render(slow)
    with pytest.raises(ValueError):
        fast.tokens_of("d", "input").inc(-1)
    assert _render(fast) == _render(slow)
