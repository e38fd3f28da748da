"""Budget threshold alerts: events, de-duplication per window, and the webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from headway.budgets.alerts import BudgetAlerts
from headway.limits.values import Item, Rejection, Reservation
from headway.observe.events import Event, EventBus
from tests.conftest import free_port

DAY0 = 1_767_225_600.0


def usd_day(amount: int, limit: int = 1_000_000) -> Item:
    return Item(
        "b:team:acme:red:usd:day",
        "window",
        limit,
        86400.0,
        amount,
        "team",
        "usd",
        "usd/day",
        budget=True,
    )


def reserved(item: Item, used: float, at: float = DAY0) -> Reservation:
    return Reservation("r", (item,), (used,), at)


def collect(bus: EventBus) -> list[Event]:
    got: list[Event] = []
    bus.subscribe("budget.threshold", got.append)
    return got


async def test_crossing_a_threshold_alerts_once_per_window() -> None:
    bus = EventBus()
    got = collect(bus)
    alerts = BudgetAlerts([0.8, 1.0], bus)
    alerts.after_reserve(reserved(usd_day(100_000), 700_000))  # 60% -> 70%
    alerts.after_reserve(reserved(usd_day(150_000), 850_000))  # 70% -> 85%
    alerts.after_reserve(reserved(usd_day(150_000), 850_000))  # again, same day
    alerts.after_reserve(reserved(usd_day(150_000), 850_000, at=DAY0 + 86400))  # next day
    assert [(e.data["threshold"], e.data["at"]) for e in got] == [(0.8, DAY0), (0.8, DAY0 + 86400)]
    data = got[0].data
    assert (data["tier"], data["identity"], data["used"], data["limit"]) == (
        "team",
        "acme:red",
        "0.85",
        "1",
    )


async def test_a_refusal_is_the_exhausted_alert() -> None:
    bus = EventBus()
    got = collect(bus)
    alerts = BudgetAlerts([0.8, 1.0], bus)
    rej = Rejection(usd_day(200_000), 3600.0, DAY0)
    alerts.on_rejection(rej)
    alerts.on_rejection(rej)
    assert [(e.data["threshold"], e.data["exhausted"]) for e in got] == [(1.0, True)]
    rate = Item("user:x:tpm", "bucket", 10, 60.0, 20, "user", "tokens", "tpm")
    alerts.on_rejection(Rejection(rate, None, DAY0))  # rate limits are not budgets
    assert len(got) == 1


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/hook", received
    finally:
        await runner.cleanup()


async def test_alerts_are_posted_to_the_webhook(
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    alerts = BudgetAlerts([0.5], EventBus(), webhook_url=url)
    alerts.after_reserve(reserved(usd_day(600_000), 600_000))
    await alerts.drain()
    await alerts.aclose()
    assert len(received) == 1
    assert received[0]["budget"] == "usd/day" and received[0]["threshold"] == 0.5


async def test_a_dead_webhook_does_not_break_anything() -> None:
    alerts = BudgetAlerts([0.5], EventBus(), webhook_url=f"http://127.0.0.1:{free_port()}/x")
    alerts.after_reserve(reserved(usd_day(600_000), 600_000))
    await alerts.drain()
    await alerts.aclose()
