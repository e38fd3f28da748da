"""The limits and budgets stage: reserve every tier in one atomic operation before the call,
wait in a fair queue when capacity is short, settle to real usage after.

    admit:  plan (tiers, estimate, worst-case cost) -> FairQueue.admit(store.reserve) ->
            x-ratelimit headers, skip_deployments, capacity debit, budget alerts
    serve:  nxt(call)  (cache, degrade, routing)
    settle: real usage (or the estimate when the stream was cut) -> store.settle ->
            call.served.cost_usd, `call.settled` event (the ledger listens). Cache hits settle
            as zero usage and cost; `served.cost_usd` then holds what they saved (details and
            the settle-only mode used when limits and budgets are off: limits/settle_only.py)

Streams settle in the generator's `finally`: on normal end, on error, and when the client goes
away (GeneratorExit from aclose, or CancelledError); settlement is shielded so a second
cancellation cannot lose it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal

from headway.budgets.alerts import BudgetAlerts
from headway.budgets.pricing import PriceBook
from headway.budgets.values import MICRO
from headway.clock import Clock
from headway.config.runtime import RuntimeConfig
from headway.context import Call
from headway.errors import Unavailable
from headway.limits.capacity import CapacityView
from headway.limits.config import LimitsConfig
from headway.limits.estimate import Estimator
from headway.limits.headers import ratelimit_headers, rejection_error
from headway.limits.plan import Plan, Planner, esc, rate_items
from headway.limits.queue import FairQueue
from headway.limits.settle import Actual, actual_usage, price_usage, savings_usd, settlement
from headway.limits.settle_only import SettleStage, build_settle_only
from headway.limits.setup import check_config, shared_store
from headway.limits.store import LimitStore
from headway.limits.values import Item, Outcome, Rejection, Reservation, StoreUnavailable
from headway.observe.events import EventBus
from headway.pipeline import ChatHandler, StreamHandler
from headway.services import Services
from headway.types import ChatChunk, ChatResponse, Usage

log = logging.getLogger("headway.limits")

_HITS = ("exact", "semantic", "stale")
_NOTHING = Reservation("", (), (), 0.0)


@dataclass(slots=True)
class Ticket:
    plan: Plan
    #: None when the store was down and the policy let the call through unaccounted
    reservation: Reservation | None
    #: the deployment whose own limits were reserved (the first of the chain with capacity)
    deployment: str | None


class LimitsStage:
    name = "limits"

    def __init__(
        self,
        runtime: RuntimeConfig,
        *,
        store: LimitStore,
        prices: PriceBook,
        queue: FairQueue,
        capacity: CapacityView,
        alerts: BudgetAlerts,
        clock: Clock,
        events: EventBus,
    ) -> None:
        self._cfg: LimitsConfig = runtime.file.limits
        self._budgets_closed = runtime.file.budgets.on_store_error == "closed"
        self._estimator = Estimator(self._cfg.estimate)
        self._prices = prices
        self._planner = Planner(runtime, self._estimator, self._prices)
        self._store = store
        self._queue = queue
        self._capacity = capacity
        self._alerts = alerts
        self._clock = clock
        self._events = events
        self._pending: set[asyncio.Task[None]] = set()

    # ---- admission --------------------------------------------------------------------------

    async def _admit(self, call: Call) -> Ticket:
        plan = self._planner.plan(call)
        if self._cfg.estimate.cap_output and call.request.max_tokens is None:
            call.request = replace(call.request, max_tokens=plan.output_cap)
        candidates: list[str] = list(plan.chain)
        clock = self._clock
        inside = 0.0  # seconds spent in store round trips: headway's overhead, not waiting

        async def attempt() -> Outcome:
            nonlocal inside
            began = clock.monotonic()
            try:
                return await reserve()
            finally:
                inside += clock.monotonic() - began

        async def reserve() -> Outcome:
            nonlocal candidates
            now = self._clock.time()
            waits = {d: self._capacity.wait(d, plan.demands[d], now) for d in plan.chain}
            candidates = [d for d in plan.chain if waits[d] <= 0]
            if plan.chain and not candidates:
                first = min(plan.chain, key=waits.__getitem__)
                return Rejection(_provider_item(first), waits[first], now)
            groups = [plan.dep_items.get(d, ()) for d in candidates]
            if not plan.items and not any(groups):
                return _NOTHING
            return await self._store.reserve(plan.items, groups if any(groups) else ())

        wait = self._cfg.wait
        now = self._clock.monotonic()
        until = now
        if wait.enabled:
            until = now + wait.max_wait_s
            if call.deadline is not None:
                until = min(until, call.deadline)
        keys = [i.key for i in plan.items]
        try:
            outcome = await self._queue.admit(attempt, keys, call.priority, until)
        except StoreUnavailable as exc:
            return self._store_down(call, plan, exc)
        finally:
            # time in line for capacity is reported apart from headway's own overhead
            call.served.wait_s += max(0.0, clock.monotonic() - now - inside)
        if isinstance(outcome, Rejection):
            self._alerts.on_rejection(outcome)
            if self._events.wants("limits.rejected"):
                item = outcome.item
                self._events.emit(
                    "limits.rejected",
                    tier=item.tier,
                    limit=item.label,
                    budget=item.budget,
                    call=call,
                )
            raise rejection_error(outcome)
        chosen = candidates[outcome.choice] if outcome.choice >= 0 else None
        if chosen is None and candidates:
            chosen = candidates[0]
        if chosen is not None:
            keep = candidates[candidates.index(chosen) :]
            call.skip_deployments = frozenset(d for d in plan.chain if d not in keep)
            self._capacity.debit(chosen, plan.demands[chosen])
        if outcome.items:
            call.served.ratelimit_headers.update(ratelimit_headers(outcome))
            self._alerts.after_reserve(outcome)
        return Ticket(plan, outcome, chosen)

    def _store_down(self, call: Call, plan: Plan, exc: StoreUnavailable) -> Ticket:
        budgets = any(i.budget for i in plan.items)
        limits = any(not i.budget for i in plan.items) or bool(plan.dep_items)
        closed = (budgets and self._budgets_closed) or (
            limits and self._cfg.on_store_error == "closed"
        )
        log.warning(
            "limits store unavailable (%s): failing %s", exc, "closed" if closed else "open"
        )
        if closed:
            what = "budgets" if budgets and self._budgets_closed else "rate limits"
            # the call may still be answered from cache; it must not go upstream unaccounted
            call.upstream_block = Unavailable(
                f"headway cannot check {what} right now: its shared state store is unreachable. "
                "Retry shortly.",
                retry_after=1.0,
            )
        else:
            call.served.degraded.append("limits_unenforced")
        return Ticket(plan, None, plan.chain[0] if plan.chain else None)

    # ---- settlement -------------------------------------------------------------------------

    async def _finish(
        self,
        ticket: Ticket,
        call: Call,
        reported: Usage | None,
        *,
        started: bool,
        streamed: str = "",
    ) -> None:
        task = asyncio.ensure_future(self._settle(ticket, call, reported, started, streamed))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        await asyncio.shield(task)

    async def _settle(
        self, ticket: Ticket, call: Call, reported: Usage | None, started: bool, streamed: str
    ) -> None:
        served = call.served
        hit = served.cache in _HITS
        dep = served.deployment or ticket.deployment
        plan = ticket.plan
        demand = plan.demands.get(dep, plan.demand) if dep is not None else plan.demand
        usage = actual_usage(
            reported if reported is not None else served.usage,
            cache_hit=hit,
            started=started,
            demand=demand,
            streamed_tokens=self._estimator.streamed_output(streamed) if streamed else 0,
        )
        price = self._prices.get(dep) if dep is not None else None
        cost = Decimal(0) if hit else price_usage(usage, price)
        actual = Actual(usage, cost)
        if hit:
            if served.cost_usd is None:  # unless the cache said so already
                served.cost_usd = savings_usd(served.usage, price)
        elif cost is not None:
            served.cost_usd = float(cost / MICRO)
        res = ticket.reservation
        if res is not None and res.items:
            amounts = settlement(
                res.items,
                actual,
                reserved_dep=ticket.deployment,
                served_dep=served.deployment,
                keeps_reserved=ticket.deployment in self._planner.keeps_reserved,
            )
            extra = self._moved_items(plan, ticket.deployment, served.deployment, actual)
            try:
                await self._store.settle(res, amounts, extra=extra)
            except StoreUnavailable as exc:
                # the reservation stays charged until its windows drain: safe, never overspent
                log.warning("could not settle %s: %s", call.request_id, exc)
            self._queue.kick(i.key for i in res.items)
        # a hit is recorded as a call that used and cost nothing upstream (see settle_only)
        self._events.emit(
            "call.settled",
            call=call,
            usage=usage,
            cost_usd=None if cost is None else cost / MICRO,
            deployment=served.deployment if hit else dep,
        )

    def _moved_items(
        self, plan: Plan, reserved: str | None, served: str | None, actual: Actual
    ) -> list[Item]:
        """A fallback served the call: charge what it used to that deployment's own limits."""
        if served is None or served == reserved or not self._cfg.enabled:
            return []
        spec = self._planner.deployments.get(served)
        if spec is None:
            return []
        demand = plan.demands.get(served, plan.demand)
        items = rate_items("deployment", esc(served), spec, demand, self._cfg.concurrency_lease_s)
        keep = served in self._planner.keeps_reserved
        return [
            replace(i, amount=max(i.amount, actual.amount(i)) if keep else actual.amount(i))
            for i in items
            if i.kind == "bucket"
        ]

    # ---- the stage --------------------------------------------------------------------------

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        ticket = await self._admit(call)
        try:
            response = await nxt(call)
        except BaseException:
            await self._finish(ticket, call, None, started=False)
            raise
        await self._finish(ticket, call, response.usage, started=True)
        return response

    async def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        ticket = await self._admit(call)
        usage: Usage | None = None
        parts: list[str] = []
        started = False
        chunks = nxt(call)
        try:
            async for chunk in chunks:
                started = True
                if chunk.usage is not None:
                    usage = chunk.usage
                if chunk.text:
                    parts.append(chunk.text)
                for delta in chunk.tool_calls:
                    parts.append((delta.name or "") + delta.arguments)
                yield chunk
        finally:
            try:
                # the client went away: close the upstream stream too, before accounting
                close = getattr(chunks, "aclose", None)
                if close is not None:
                    await close()
            finally:
                await self._finish(ticket, call, usage, started=started, streamed="".join(parts))

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def _provider_item(deployment: str) -> Item:
    """Stands for a provider's reported capacity in a rejection (nothing is stored under it)."""
    return Item(
        f"provider:{esc(deployment)}", "bucket", 0, 60.0, 0, "deployment", "tokens", "provider"
    )


# ---- assembly -------------------------------------------------------------------------------


def build(runtime: RuntimeConfig, services: Services) -> LimitsStage | SettleStage | None:
    """The stage. With neither limits nor budgets enabled, the settle-only stage (no store, no
    reservation: it prices each call and emits `call.settled` for the ledger and metrics), or
    None when nothing needs a call's cost. Store, queue, capacity view and alerts live in
    `services.extras`, so they survive config reloads."""
    lim, bud = runtime.file.limits, runtime.file.budgets
    if not lim.enabled and not bud.enabled:
        return build_settle_only(runtime, services.events)
    prices = PriceBook(runtime)
    check_config(runtime, prices)
    extras = services.extras
    queue = extras.get("limits.queue")
    if not isinstance(queue, FairQueue):
        queue = extras["limits.queue"] = FairQueue(
            services.clock, recheck_s=lim.wait.concurrency_recheck_s
        )
    capacity = extras.get("limits.capacity")
    if not isinstance(capacity, CapacityView):
        capacity = extras["limits.capacity"] = CapacityView()
    alerts = extras.get("budgets.alerts")
    if not isinstance(alerts, BudgetAlerts):
        alerts = extras["budgets.alerts"] = BudgetAlerts(
            bud.thresholds, services.events, webhook_url=bud.webhook_url
        )
    else:
        alerts.configure(bud.thresholds, bud.webhook_url)
    return LimitsStage(
        runtime,
        store=shared_store(runtime, services),
        prices=prices,
        queue=queue,
        capacity=capacity,
        alerts=alerts,
        clock=services.clock,
        events=services.events,
    )
