"""The observe stage finds the metric children a kind of call counts into once and keeps them:
repeated calls still count every time, into the series `labels` would have given, and a series
appears only once something was counted into it."""

from __future__ import annotations

from headway.config.load import load
from headway.errors import UpstreamError
from headway.gateway import Gateway
from headway.observe.metrics import Metrics
from headway.types import ChatRequest, Message
from tests.stubs import StubProvider

CONFIG = """
providers: {p: {kind: sim}}
models:
  a: {provider: p, model: a, input_price: 1.0, output_price: 2.0}
  b: {provider: p, model: b}
routes:
  default: {chain: [a]}
  other: {chain: [b]}
"""


def _value(metrics: Metrics, name: str, labels: dict[str, str]) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def _req(model: str) -> ChatRequest:
    return ChatRequest(model=model, messages=(Message("user", "hello there"),))


async def test_repeated_calls_count_into_the_same_series_every_time() -> None:
    gw = Gateway(
        load(text=CONFIG),
        providers={"a": StubProvider("a"), "b": StubProvider("b", fail=UpstreamError("no"))},
    )
    for _ in range(3):
        await gw.chat(_req("default"))
    for _ in range(2):
        try:
            await gw.chat(_req("other"))
        except UpstreamError:
            pass
    metrics = gw.services.extras["metrics"]
    assert isinstance(metrics, Metrics)
    ok = {"route": "default", "deployment": "a", "outcome": "ok", "cache": "off"}
    failed = {"route": "other", "deployment": "-", "outcome": "error_502", "cache": "off"}
    assert _value(metrics, "headway_requests_total", ok) == 3
    assert _value(metrics, "headway_requests_total", failed) == 2
    latency = {"deployment": "a", "input_bucket": "lt1k", "stream": "0"}
    assert _value(metrics, "headway_request_latency_seconds_count", latency) == 3
    assert _value(metrics, "headway_tokens_total", {"deployment": "a", "kind": "input"}) == 15
    assert _value(metrics, "headway_tokens_total", {"deployment": "a", "kind": "output"}) == 9
    cost = _value(metrics, "headway_cost_usd_total", {"deployment": "a"})
    assert cost is not None and cost > 0
    # nothing was counted for the failed calls' tokens or cost: no series for them
    assert _value(metrics, "headway_tokens_total", {"deployment": "-", "kind": "input"}) is None
    assert _value(metrics, "headway_cost_usd_total", {"deployment": "-"}) is None
    await gw.aclose()
