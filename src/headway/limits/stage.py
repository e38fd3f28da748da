"""The limits and budgets stage: reserve every tier in one atomic operation before the call,
wait in a fair queue when capacity is short, settle to real usage after.

    admit:  plan (tiers, estimate, worst-case cost) -> FairQueue.admit(store.reserve) ->
            x-ratelimit headers, skip_deployments, capacity debit, budget alerts
    serve:  nxt(call)  (cache, degrade, routing)
    settle: real usage (or the estimate when the stream was cut) -> store.settle ->
            call.served.cost_usd, `call.settled` event (the ledger listens). Cache hits settle
            as zero usage and cost; `served.cost_usd` then holds what they saved (details and
            the settle-only mode used when limits and budgets are off: limits/settle_only.py)

Streams settle in the generator's `finally` (limits/settle.settled_stream, shared with the
settle-only stage): on normal end, on error, and when the client goes away (GeneratorExit from
aclose, or CancelledError). With a remote store, settlement runs in a shielded task so a second
cancellation cannot lose it; a store that writes the settlement at once (Redis: `settle_soon`)
needs no task, since nothing can unsend it, and what follows its reply runs in a callback. While
that settlement is to follow, inner stages may write to Redis without awaiting the reply
(`headway.stores.redis.write_follows`: the cache's SET). The memory store reserves and settles
synchronously (nothing to cancel, and no coroutine, task or queue round per call while nobody
waits in line). Either
store is asked at once, outside the fair queue, while nobody waits in line for the call's limits.

The planner resolves each caller's items and each deployment's encoding, factor and price once
(per config; a changed key is a new caller), so a call only fills in its amounts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from functools import partial
from typing import Any

from headway.budgets.alerts import BudgetAlerts
from headway.budgets.pricing import PriceBook
from headway.clock import Clock
from headway.config.runtime import RuntimeConfig
from headway.context import Call
from headway.errors import Unavailable
from headway.limits.capacity import CapacityView
from headway.limits.config import LimitsConfig
from headway.limits.estimate import Demand, Estimator
from headway.limits.headers import ratelimit_headers, rejection_error
from headway.limits.plan import Plan, Planner, esc, rate_items
from headway.limits.queue import FairQueue
from headway.limits.settle import (
    HITS,
    Actual,
    SettleJob,
    SettleSoon,
    account,
    emit_settled,
    pass_on,
    settled_stream,
    settlement,
)
from headway.limits.settle_only import SettleStage, build_settle_only
from headway.limits.setup import check_config, shared_store
from headway.limits.store import LimitStore, MemoryLimitStore
from headway.limits.values import Item, Outcome, Rejection, Reservation, StoreUnavailable
from headway.observe.events import EventBus
from headway.pipeline import ChatHandler, StreamHandler
from headway.services import Services
from headway.stores.redis import write_follows
from headway.stores.resp import NoScript, RedisUnavailable
from headway.types import ChatChunk, ChatRequest, ChatResponse, Usage

log = logging.getLogger("headway.limits")

_NOTHING = Reservation("", (), (), 0.0)
_NO_SKIP: frozenset[str] = frozenset()


@dataclass(slots=True)
class Ticket:
    plan: Plan
    #: None when the store was down and the policy let the call through unaccounted
    reservation: Reservation | None
    #: the deployment whose own limits were reserved (the first of the chain with capacity)
    deployment: str | None
    #: the deployment the call is accounted to, once it is over (the one that served it)
    accounted: str | None = None

    def estimate(self) -> Demand:
        """The call's estimated demand on the accounted deployment (for a stream cut before
        its usage arrived). A bound method, not a closure: `_finish` then makes no cells."""
        dep, plan = self.accounted, self.plan
        return plan.demands.get(dep, plan.demand) if dep is not None else plan.demand


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
        self._cap_output = self._cfg.estimate.cap_output
        self._budgets_closed = runtime.file.budgets.on_store_error == "closed"
        self._estimator = Estimator(self._cfg.estimate)
        self._prices = prices
        self._planner = Planner(runtime, self._estimator, self._prices)
        self._store = store
        #: the per-process store, when that is the backend: reserved and settled synchronously
        self._memory = store if type(store) is MemoryLimitStore else None
        self._queue = queue
        self._capacity = capacity
        self._alerts = alerts
        self._clock = clock
        self._events = events
        self._pending: set[asyncio.Future[None]] = set()
        #: a store that writes a settlement at once and hands back its reply (Redis): settled
        #: without a task of its own (limits/redis_store.RedisLimitStore.settle_soon)
        self._settle_soon: SettleSoon | None = (
            getattr(store, "settle_soon", None) if self._memory is None else None
        )

    # ---- admission --------------------------------------------------------------------------

    def _admit_now(self, call: Call) -> Ticket | Coroutine[Any, Any, Ticket]:
        """Admission. With the in-process store, while nobody waits in line for the call's
        limits, it is done here at once, without a coroutine: the ticket. Otherwise (a remote
        store; someone waits in line; a rejection worth waiting for) the rest of it is the
        returned coroutine, to await."""
        plan = self._planner.plan(call)
        if self._cap_output and call.request.max_tokens is None:
            call.request = _with_max_tokens(call.request, plan.output_cap)
        memory, queue = self._memory, self._queue
        if memory is None or not (queue.idle or queue.free(plan.caller.keys, call.priority)):
            return self._admit_rest(call, plan)
        candidates, early, groups = self._groups(plan)
        outcome = early if early is not None else memory.reserve_now(plan.items, groups)
        if isinstance(outcome, Rejection):
            now = self._clock.monotonic()
            if queue.worth_waiting(outcome, self._until(call, now)):
                return self._admit_rest(call, plan, (now, outcome))
        return self._admitted(call, plan, candidates, outcome)

    async def _admit(self, call: Call) -> Ticket:
        """`_admit_now`, awaited (a stream's `begin`)."""
        ticket = self._admit_now(call)
        return ticket if isinstance(ticket, Ticket) else await ticket

    async def _admit_rest(
        self, call: Call, plan: Plan, first: tuple[float, Rejection] | None = None
    ) -> Ticket:
        """Admission through the store's coroutine or the fair queue; `first` is a rejection
        already met at once (and when), worth waiting in line for."""
        queue = self._queue
        try:
            if first is not None:
                candidates, outcome = await self._in_line(call, plan, *first)
            elif queue.idle or queue.free(plan.caller.keys, call.priority):
                # nobody waits in line for these limits: try at once, without the queue's
                # coroutines and closure
                candidates, early, groups = self._groups(plan)
                if early is not None:
                    outcome = early
                elif self._memory is not None:
                    outcome = self._memory.reserve_now(plan.items, groups)
                else:
                    outcome = await self._store.reserve(plan.items, groups)
                if isinstance(outcome, Rejection):
                    now = self._clock.monotonic()
                    if queue.worth_waiting(outcome, self._until(call, now)):
                        candidates, outcome = await self._in_line(call, plan, now, outcome)
            else:
                candidates, outcome = await self._in_line(call, plan, self._clock.monotonic())
        except StoreUnavailable as exc:
            return self._store_down(call, plan, exc)
        return self._admitted(call, plan, candidates, outcome)

    def _admitted(
        self, call: Call, plan: Plan, candidates: Sequence[str], outcome: Outcome
    ) -> Ticket:
        """The call's ticket once the store answered; a rejection raises its error."""
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
            if chosen == candidates[0] and len(candidates) == len(plan.chain):
                call.skip_deployments = _NO_SKIP  # the common case: every deployment may serve
            else:
                keep = candidates[candidates.index(chosen) :]
                call.skip_deployments = frozenset(d for d in plan.chain if d not in keep)
            self._capacity.debit(chosen, plan.demands[chosen])
        if outcome.items:
            caller = plan.caller
            ratelimit_headers(outcome, caller.header_slots, call.served.ratelimit_headers)
            if caller.budgets:
                self._alerts.after_reserve(outcome, caller.budget_slots)
        return Ticket(plan, outcome, chosen)

    def _until(self, call: Call, now: float) -> float:
        """Until when the call may wait in line for capacity (Clock.monotonic scale)."""
        wait = self._cfg.wait
        if not wait.enabled:
            return now
        until = now + wait.max_wait_s
        return until if call.deadline is None else min(until, call.deadline)

    async def _in_line(
        self, call: Call, plan: Plan, now: float, first: Rejection | None = None
    ) -> tuple[tuple[str, ...], Outcome]:
        """Reserve through the fair queue, waiting in line when capacity is short; `first` is
        a rejection already met at once. Returns the candidates of the last attempt too."""
        clock = self._clock
        candidates = plan.chain
        inside = 0.0  # seconds spent in store round trips: headway's overhead, not waiting

        async def attempt() -> Outcome:
            nonlocal inside, candidates
            began = clock.monotonic()
            try:
                candidates, early, groups = self._groups(plan)
                if early is not None:
                    return early
                return await self._store.reserve(plan.items, groups)
            finally:
                inside += clock.monotonic() - began

        until = self._until(call, now)
        try:
            outcome = await self._queue.admit(
                attempt, plan.caller.keys, call.priority, until, first=first
            )
        finally:
            # time in line for capacity is reported apart from headway's own overhead
            call.served.wait_s += max(0.0, clock.monotonic() - now - inside)
        return candidates, outcome

    def _groups(
        self, plan: Plan
    ) -> tuple[tuple[str, ...], Outcome | None, Sequence[tuple[Item, ...]]]:
        """The deployments with provider capacity now, an outcome when the store need not be
        asked (none has capacity; nothing to reserve), and their groups of own limits."""
        chain = candidates = plan.chain
        if chain:
            now = self._clock.time()
            wait, demands = self._capacity.wait, plan.demands
            # loops, not comprehensions (a frame each): most chains have one deployment
            waits: list[float] = []
            short = False
            for d in chain:
                w = wait(d, demands[d], now)
                waits.append(w)
                if not w <= 0:
                    short = True
            if short:  # some deployment has no capacity now (rare): leave it out
                candidates = tuple(d for d, w in zip(chain, waits, strict=True) if w <= 0)
                if not candidates:
                    i = waits.index(min(waits))  # the first of the soonest, as min() picks
                    return candidates, Rejection(_provider_item(chain[i]), waits[i], now), ()
        if not plan.dep_items:  # no deployment has limits of its own (the usual case)
            return candidates, None if plan.items else _NOTHING, ()
        groups = [plan.dep_items.get(d, ()) for d in candidates]
        if not any(groups):
            return candidates, None if plan.items else _NOTHING, ()
        return candidates, None, groups

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
        parts: list[str] | None = None,
    ) -> None:
        settling = self._finish_now(ticket, call, reported, started=started, parts=parts)
        if settling is not None:
            await settling

    def _finish_now(
        self,
        ticket: Ticket,
        call: Call,
        reported: Usage | None,
        *,
        started: bool,
        parts: list[str] | None = None,
    ) -> asyncio.Future[None] | None:
        """Settle the call: at once with the in-process store (or with nothing to settle);
        with a remote store, a future of the settlement is returned, for the caller to await
        (its cancellation cannot lose the settlement)."""
        served = call.served
        dep = ticket.accounted = served.deployment or ticket.deployment
        usage, cost = account(
            call,
            reported,
            started=started,
            price=self._prices.get(dep) if dep is not None else None,
            estimate=ticket.estimate,
            streamed=_nothing_streamed if parts is None else self._streamed(parts),
        )
        # a hit is recorded as a call that used and cost nothing upstream (see settle_only)
        settled_dep = served.deployment if served.cache in HITS else dep
        res = ticket.reservation
        if res is None or not res.items:
            emit_settled(self._events, call, usage, cost, settled_dep)
            return None
        actual = Actual(usage, cost)
        amounts = settlement(
            res.items,
            actual,
            reserved_dep=ticket.deployment,
            served_dep=served.deployment,
            keeps_reserved=ticket.deployment in self._planner.keeps_reserved,
        )
        extra = (
            self._moved_items(ticket.plan, ticket.deployment, served.deployment, actual)
            if served.deployment is not None and served.deployment != ticket.deployment
            else ()  # `_moved_items` moves nothing then: spared the call
        )
        if self._memory is not None:
            # synchronous: nothing can cancel it halfway, so it needs no task of its own
            self._memory.settle_now(res, amounts, extra=extra)
            if not self._queue.idle:
                self._queue.kick(i.key for i in res.items)
            emit_settled(self._events, call, usage, cost, settled_dep)
            return None
        if self._settle_soon is not None:
            return self._settling((call, res, amounts, extra, (usage, cost, settled_dep)))
        # a remote store: a task, shielded, so a second cancellation cannot lose the settlement
        task = asyncio.ensure_future(
            self._settle(call, res, amounts, extra, (usage, cost, settled_dep))
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return asyncio.shield(task)

    def _settling(self, job: SettleJob) -> asyncio.Future[None]:
        """`_settle` through `settle_soon`: the settlement is written to the connection here, so
        no cancellation can lose it, and what follows its reply runs in a callback; a task, a
        coroutine and a shield per call are spared. The future returned is done after that."""
        assert self._settle_soon is not None
        reply = self._settle_soon(job[1], job[2], job[3])
        if not isinstance(reply, asyncio.Future):  # a connection being opened: not written yet
            reply = asyncio.ensure_future(reply)
        done: asyncio.Future[None] = reply.get_loop().create_future()
        self._pending.add(done)
        reply.add_done_callback(partial(self._settled, done, job))
        return done

    def _settled(
        self, done: asyncio.Future[None], job: SettleJob, reply: asyncio.Future[Any]
    ) -> None:
        """After a `_settling` reply: what `_settle` does after the store's answer."""
        self._pending.discard(done)
        call, res, _, _, settled = job
        exc = None if reply.cancelled() else reply.exception()
        if isinstance(exc, NoScript):
            # the server lost the script since the reservation: the store's coroutine sends it
            task = asyncio.ensure_future(self._settle(*job))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            task.add_done_callback(partial(pass_on, done))
            return
        if isinstance(exc, RedisUnavailable):
            # the reservation stays charged until its windows drain: safe, never overspent
            log.warning("could not settle %s: %s", call.request_id, exc)
        elif exc is not None:  # as `_settle` would raise it
            if not done.done():
                done.set_exception(exc)
            return
        self._queue.kick(i.key for i in res.items)
        emit_settled(self._events, call, *settled)
        if not done.done():  # its awaiting caller may have been cancelled
            done.set_result(None)

    async def _settle(
        self,
        call: Call,
        res: Reservation,
        amounts: list[int],
        extra: Sequence[Item],
        settled: tuple[Usage, Decimal | None, str | None],
    ) -> None:
        try:
            await self._store.settle(res, amounts, extra=extra)
        except StoreUnavailable as exc:
            # the reservation stays charged until its windows drain: safe, never overspent
            log.warning("could not settle %s: %s", call.request_id, exc)
        self._queue.kick(i.key for i in res.items)
        emit_settled(self._events, call, *settled)

    def _streamed(self, parts: list[str]) -> Callable[[], int]:
        """Counts the output a stream sent (its cells are made here, only for streams)."""
        return lambda: self._estimator.streamed_output("".join(parts)) if parts else 0

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
        amounts = actual.amounts()
        moved: list[Item] = []
        for i in items:
            if i.kind == "bucket":
                used = amounts[i.measure]
                moved.append(replace(i, amount=max(i.amount, used) if keep else used))
        return moved

    # ---- the stage --------------------------------------------------------------------------

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        # admission and settlement without coroutines of their own when nothing awaits
        ticket = self._admit_now(call)
        if not isinstance(ticket, Ticket):
            ticket = await ticket
        res = ticket.reservation
        # a settlement will be written and awaited after the inner stages, before the response:
        # their Redis writes may leave with it, unawaited (cache/stage.py, `_store_detached`)
        follows = (
            write_follows.set(True)
            if self._settle_soon is not None and res is not None and res.items
            else None
        )
        try:
            response = await nxt(call)
        except BaseException:
            await self._finish(ticket, call, None, started=False)
            raise
        finally:
            if follows is not None:
                write_follows.reset(follows)
        settling = self._finish_now(ticket, call, response.usage, started=True)
        if settling is not None:
            await settling
        return response

    def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        return settled_stream(call, nxt, self._admit, self._end)

    async def _end(
        self, call: Call, ticket: Ticket, usage: Usage | None, started: bool, parts: list[str]
    ) -> None:
        await self._finish(ticket, call, usage, started=started, parts=parts)

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


#: ChatRequest's fields in order: `_with_max_tokens` names each one, which costs half of
#: building the copy from `attrgetter` values (and a third of `dataclasses.replace`). A field
#: added to ChatRequest fails this check at import, rather than being dropped from the copy.
_REQUEST_FIELDS = (
    "model",
    "messages",
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "seed",
    "n",
    "user",
    "metadata",
    "stream",
    "include_usage",
    "extra",
)
assert tuple(f.name for f in fields(ChatRequest) if f.init) == _REQUEST_FIELDS and all(
    f.init for f in fields(ChatRequest)
), "ChatRequest's fields changed: update _with_max_tokens"


def _with_max_tokens(request: ChatRequest, cap: int) -> ChatRequest:
    r = request
    return ChatRequest(
        r.model,
        r.messages,
        cap,
        r.temperature,
        r.top_p,
        r.stop,
        r.tools,
        r.tool_choice,
        r.parallel_tool_calls,
        r.response_format,
        r.seed,
        r.n,
        r.user,
        r.metadata,
        r.stream,
        r.include_usage,
        r.extra,
    )


def _nothing_streamed() -> int:
    return 0  # a plain call streamed nothing


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
