"""Budget alerts at configured thresholds (e.g. 80% and 100%).

An alert fires when a reservation carries a budget's committed spend (settled plus reserved)
across a threshold, and at 100% when a call is refused by a budget. Each goes out as a
`budget.threshold` event (metrics listen), a log line, and, when configured, a JSON POST to a
webhook, sent off the response path. Each process alerts at most once per budget window and
threshold.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from headway.budgets.values import MICRO
from headway.limits.values import Item, Rejection, Reservation
from headway.limits.window import window_index
from headway.observe.events import EventBus

log = logging.getLogger("headway.budgets")

_REMEMBER = 10_000


def _identity(key: str) -> str:
    # b:<tier>:<identity>:<unit>:<period>; the identity's own colons are escaped
    parts = key.split(":")
    return ":".join(parts[2:-2]).replace("%3A", ":").replace("%25", "%")


class BudgetAlerts:
    def __init__(
        self,
        thresholds: Sequence[float],
        events: EventBus,
        *,
        webhook_url: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self._thresholds = sorted(set(thresholds))
        self._events = events
        self._webhook = webhook_url
        self._timeout = timeout_s
        self._fired: OrderedDict[tuple[str, float, float], None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: Any = None

    def configure(self, thresholds: Sequence[float], webhook_url: str | None) -> None:
        """Take new settings on config reload, keeping what was already alerted."""
        self._thresholds = sorted(set(thresholds))
        self._webhook = webhook_url

    def after_reserve(self, res: Reservation, slots: Sequence[int] | None = None) -> None:
        """Alert on budgets this reservation carried across a threshold. `slots` are the
        indices of its budget items, when known (the planner works them out once per caller)."""
        items, levels = res.items, res.used
        if slots is None:
            slots = [i for i, item in enumerate(items) if item.budget]
        for i in slots:
            item, used = items[i], levels[i]
            if item.limit <= 0:
                continue
            before = used - item.amount
            for t in self._thresholds:
                mark = t * item.limit
                if mark > used:
                    break  # thresholds ascend: no later one is reached either (most calls)
                if before < mark:
                    self._fire(item, t, used, res.at)

    def on_rejection(self, rej: Rejection) -> None:
        if rej.item.budget and self._thresholds:
            top = max(self._thresholds)
            if top >= 1.0:
                self._fire(rej.item, top, float(rej.item.limit), rej.at, exhausted=True)

    def _fire(
        self, item: Item, threshold: float, used: float, at: float, *, exhausted: bool = False
    ) -> None:
        mark = (item.key, window_index(at, item.period), threshold)
        if mark in self._fired:
            return
        self._fired[mark] = None
        if len(self._fired) > _REMEMBER:
            self._fired.popitem(last=False)
        usd = item.measure == "usd"
        payload: dict[str, Any] = {
            "tier": item.tier,
            "identity": _identity(item.key),
            "budget": item.label,
            "threshold": threshold,
            "exhausted": exhausted,
            "unit": "usd" if usd else "tokens",
            "used": str(Decimal(round(used)) / MICRO) if usd else round(used),
            "limit": str(Decimal(item.limit) / MICRO) if usd else item.limit,
            "at": at,
        }
        self._events.emit("budget.threshold", **payload)
        log.warning(
            "budget %s of %s %s reached %d%% (%s of %s)",
            item.label,
            item.tier,
            payload["identity"],
            round(threshold * 100),
            payload["used"],
            payload["limit"],
        )
        if self._webhook:
            task = asyncio.get_running_loop().create_task(self._post(payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, payload: dict[str, Any]) -> None:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        try:
            async with self._session.post(self._webhook, json=payload) as resp:
                if resp.status >= 300:
                    log.warning("budget webhook answered %s", resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("budget webhook failed: %s", exc)

    async def drain(self) -> None:
        """Wait for webhook posts in flight (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        if self._session is not None:
            await self._session.close()
            self._session = None
