"""The fallback chain: an ordered list of deployments that is itself a Provider.

For each call: skip members whose breaker is open, bound every attempt by its timeout and the
call's deadline (enforced here on the Clock, whatever the provider does), re-send or fall over as
the retry policy decides, optionally hedge the first attempt, and when every member fails raise
one `AllAttemptsFailed` listing each attempt and why. Streams add first-token and stall deadlines
and mid-stream recovery (headway.routing.streaming).

`chat_with` / `stream_with` record what happened in a `Served`; the Provider methods `chat` /
`stream` use a throwaway one, so chains nest and are tested like providers. Time spent waiting on
providers goes to `served.upstream_s` (hedged attempts racing count once), backoff to
`served.wait_s`: neither is headway's overhead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from headway.clock import Clock, SystemClock
from headway.context import Served
from headway.errors import AllAttemptsFailed, Attempt, HeadwayError, UpstreamTimeout
from headway.providers.base import AttemptContext, Capabilities, Provider
from headway.routing.breaker import Outcome
from headway.routing.cursor import Cursor
from headway.routing.deadline import within
from headway.routing.hedge import hedge_delay
from headway.routing.policy import Member, Resilience, RoutePolicy
from headway.routing.race import Runner, race
from headway.routing.retry import Action, RetryBudget
from headway.routing.streaming import stream_call
from headway.types import ChatChunk, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse


def _capabilities(members: Sequence[Member]) -> Capabilities:
    caps = [m.provider.capabilities for m in members]
    return Capabilities(
        chat=any(c.chat for c in caps),
        stream=any(c.stream for c in caps),
        embeddings=any(c.embeddings for c in caps),
        tools=all(c.tools for c in caps),
        images=all(c.images for c in caps),
        json_mode=all(c.json_mode for c in caps),
        prefill=all(c.prefill for c in caps),
        stream_usage=all(c.stream_usage for c in caps),
    )


#: `HttpProvider.chat_bounded`: a chat that raises TimeoutError when `ctx.deadline` passes
BoundedChat = Callable[[ChatRequest, AttemptContext], Awaitable[ChatResponse]]


def _self_timed(provider: Provider, clock: Clock) -> BoundedChat | None:
    """The provider's `chat_bounded` when it keeps deadlines on the same clock as the chain (the
    system clock; `within` on a FakeClock is what tests drive). `within` cost a `call_at` and its
    cancel per attempt, on top of the transport's own timer for the same deadline."""
    if not isinstance(clock, SystemClock) or not getattr(provider, "bounds_deadlines", False):
        return None
    chat: BoundedChat | None = getattr(provider, "chat_bounded", None)
    return chat


def _no_answer(m: Member, actx: AttemptContext, start: float) -> UpstreamTimeout:
    """An attempt's deadline passed before its answer."""
    return UpstreamTimeout(
        f"no answer within {actx.deadline - start:.3g}s"
        if actx.deadline is not None
        else "timed out",
        provider=m.name,
    )


def _answered(served: Served, m: Member, idx: int, response: ChatResponse) -> ChatResponse:
    served.deployment = m.name
    served.upstream_model = m.upstream_model
    served.fallback_depth = idx
    served.usage = response.usage
    return response


class Chain:
    def __init__(
        self,
        name: str,
        members: Sequence[Member],
        policy: RoutePolicy,
        res: Resilience,
        *,
        route: str | None = None,
    ) -> None:
        if not members:
            raise ValueError("a chain needs at least one member")
        self.name = name
        #: the route alias reported in `served.route` (None for a deployment called directly)
        self.route = route
        self.members = tuple(members)
        self.policy = policy
        self.res = res
        self.budget = RetryBudget(
            policy.budget_ratio, policy.budget_window_s, policy.budget_min_retries
        )
        self.capabilities = _capabilities(self.members)
        self._hedged = policy.hedge is not None and len(self.members) > 1
        #: each member's observed chat latencies (the shared Resilience keeps them across reloads)
        self._windows = {m.name: res.window("chat", m.name) for m in self.members}
        #: members that time an attempt's deadline themselves, as `within` would: no timer here
        self._self_timed = {m.name: _self_timed(m.provider, res.clock) for m in self.members}

    def cursor(
        self, deadline: float | None, served: Served, skip: frozenset[str] = frozenset()
    ) -> Cursor:
        return Cursor(self.members, self.policy, self.res, self.budget, deadline, served, skip)

    def attempt_context(
        self, ctx: AttemptContext, m: Member, start: float, *, stream: bool = False
    ) -> AttemptContext:
        """What one attempt tells its provider. A chat attempt is bounded by the attempt
        timeout; a streamed one by it only until its first token (then by stall detection and
        the call's deadline), so for streams the attempt timeout folds into `ttft_timeout`."""
        policy = self.policy
        hook = m.on_ratelimit or ctx.on_ratelimit
        # Built field by field: `dataclasses.replace` costs several microseconds per attempt
        # (tests/routing check that every field of AttemptContext is carried over).
        if not stream:
            # `attempt_deadline` inline (every chat attempt): the earlier of the two
            deadline = start + policy.attempt_timeout_s
            if ctx.deadline is not None and ctx.deadline <= deadline:
                deadline = ctx.deadline
            return AttemptContext(
                ctx.request_id,
                deadline,
                policy.ttft_timeout_s,
                policy.stall_timeout_s,
                hook,
                ctx.extra_headers,
            )
        ttft = policy.attempt_timeout_s
        if policy.ttft_timeout_s is not None:
            ttft = min(ttft, policy.ttft_timeout_s)
        return AttemptContext(
            ctx.request_id, ctx.deadline, ttft, policy.stall_timeout_s, hook, ctx.extra_headers
        )

    # ---- chat -------------------------------------------------------------------------------

    def _bounded(
        self, m: Member, request: ChatRequest, actx: AttemptContext
    ) -> Awaitable[ChatResponse]:
        """The attempt's provider call, raising TimeoutError once `actx.deadline` passes."""
        chat = self._self_timed[m.name]
        if chat is not None:
            return chat(request, actx)
        return within(self.res.clock, m.provider.chat(request, actx), actx.deadline)

    async def _attempt(
        self, m: Member, request: ChatRequest, ctx: AttemptContext, start: float | None = None
    ) -> ChatResponse:
        """One attempt. `start`: when it began on the clock, if the caller just read it."""
        clock = self.res.clock
        if start is None:
            start = clock.monotonic()
        actx = self.attempt_context(ctx, m, start)
        try:
            response = await self._bounded(m, request, actx)
        except TimeoutError:
            raise _no_answer(m, actx, start) from None
        self._windows[m.name].add(clock.monotonic() - start)
        return response

    def _runner(
        self, m: Member, idx: int, probe: bool, request: ChatRequest, ctx: AttemptContext
    ) -> Runner[ChatResponse]:
        task = asyncio.ensure_future(self._attempt(m, request, ctx))

        def stop() -> None:
            task.cancel()

        return Runner(m, idx, probe, task, stop)

    async def _hedged_attempt(
        self, cur: Cursor, m: Member, request: ChatRequest, ctx: AttemptContext
    ) -> tuple[Member, ChatResponse]:
        """The first attempt, hedged. Returns the winner or raises the last failure (the cursor
        already knows about every other one)."""
        assert self.policy.hedge is not None
        delay = hedge_delay(self.policy.hedge, self.res.window("chat", m.name))

        async def launch() -> Runner[ChatResponse] | None:
            target = await cur.peek_healthy()
            if target is None:
                return None
            idx, hm, probe = target
            cur.attempts += 1
            cur.served.attempts += 1
            self.res.events.emit("hedge.sent", deployment=hm.name, primary=m.name, delay_s=delay)
            return self._runner(hm, idx, probe, request, ctx)

        clock = self.res.clock
        began = clock.monotonic()
        try:
            result = await race(
                clock, self._runner(m, cur.index, cur.probe, request, ctx), delay, launch
            )
        finally:
            cur.served.upstream_s += clock.monotonic() - began  # racing attempts count once
        for loser in result.losers:
            cur.released(loser.member, loser.probe)
        for runner, exc in result.failures[:-1] if result.winner is None else result.failures:
            await self._record_failure(cur, runner.member, exc, runner.probe)
        if result.winner is not None:
            w = result.winner
            cur.move_to(w.index)
            cur.probe = w.probe
            if result.hedged:
                self.res.events.emit("hedge.won", deployment=w.member.name, hedge=w.member is not m)
            return w.member, w.task.result()
        runner, exc = result.failures[-1]
        cur.move_to(runner.index)
        cur.probe = runner.probe
        raise exc

    async def _record_failure(
        self, cur: Cursor, m: Member, exc: BaseException, probe: bool
    ) -> None:
        if isinstance(exc, HeadwayError):
            await cur.failed(m, exc, probe)
        else:
            cur.released(m, probe)

    async def chat_with(
        self,
        request: ChatRequest,
        ctx: AttemptContext,
        served: Served,
        skip: frozenset[str] = frozenset(),
    ) -> ChatResponse:
        """`skip`: members not to try (the limits stage found them without capacity)."""
        res = self.res
        clock = res.clock
        now = clock.monotonic()
        self.budget.record_call(now)
        m = self.members[0]
        # The first member is tried before a cursor exists when nothing is to be skipped, there
        # is no hedge, the deadline has not passed and its breaker is known closed without I/O
        # (admitting it would change nothing). Nearly every call is answered by that attempt; a
        # cursor is built only when it fails, and goes on as if it had handed the attempt out.
        breakers = res.breakers
        deadline = ctx.deadline
        if (
            skip
            or self._hedged
            or (deadline is not None and now >= deadline)
            or not breakers.closed_now(m.name, self.policy.breaker)
        ):
            return await self._chat_on(self.cursor(deadline, served, skip), request, ctx)
        served.attempts += 1
        failure: HeadwayError | None = None
        # `_attempt` inlined: a coroutine fewer on the path nearly every call takes; the attempt
        # starts at `now` (the checks since are a few instructions) and its end is read once
        actx = self.attempt_context(ctx, m, now)
        try:
            try:
                response = await self._bounded(m, request, actx)
            except TimeoutError:
                raise _no_answer(m, actx, now) from None
        except HeadwayError as exc:
            failure = exc
        finally:
            took = clock.monotonic() - now
            served.upstream_s += took
        if failure is not None:
            cur = self.cursor(ctx.deadline, served, skip)
            cur.took(0, probe=False)
            return await self._chat_on(cur, request, ctx, failure)
        self._windows[m.name].add(took)
        if not breakers.succeeded_now(m.name, self.policy.breaker):
            await breakers.record(m.name, self.policy.breaker, Outcome.SUCCESS, probe=False)
        return _answered(served, m, 0, response)

    async def _chat_on(
        self,
        cur: Cursor,
        request: ChatRequest,
        ctx: AttemptContext,
        failure: HeadwayError | None = None,
    ) -> ChatResponse:
        """The call through the cursor. `failure`: how the attempt it last handed out failed."""
        clock = self.res.clock
        served = cur.served
        first = failure is None
        if failure is not None and not await self._failed(cur, failure):
            raise cur.error()
        while (m := await cur.next()) is not None:
            try:
                if first and self._hedged:
                    m, response = await self._hedged_attempt(cur, m, request, ctx)
                else:
                    began = clock.monotonic()
                    try:
                        response = await self._attempt(m, request, ctx, began)
                    finally:
                        served.upstream_s += clock.monotonic() - began
            except HeadwayError as exc:
                if await self._failed(cur, exc):
                    continue
                break
            except asyncio.CancelledError:
                cur.released(self.members[cur.index], cur.probe)
                raise
            finally:
                first = False
            await cur.succeeded(m, cur.probe)
            return _answered(served, m, cur.index, response)
        raise cur.error()

    async def _failed(self, cur: Cursor, exc: HeadwayError) -> bool:
        """Record the failure of the attempt the cursor handed out last and act on the retry
        decision (wait out a re-send's delay). False: the call stops here."""
        m = self.members[cur.index]
        await cur.failed(m, exc, cur.probe)
        decision = cur.decide(m, exc)
        if decision.action is Action.RETRY and decision.delay > 0:
            await self.res.clock.sleep(decision.delay)
            cur.served.wait_s += decision.delay
        return decision.action is not Action.FAIL

    async def chat(self, request: ChatRequest, ctx: AttemptContext) -> ChatResponse:
        return await self.chat_with(request, ctx, Served())

    # ---- stream -----------------------------------------------------------------------------

    def stream_with(
        self,
        request: ChatRequest,
        ctx: AttemptContext,
        served: Served,
        skip: frozenset[str] = frozenset(),
    ) -> AsyncIterator[ChatChunk]:
        return stream_call(self, request, ctx, served, skip)

    def stream(self, request: ChatRequest, ctx: AttemptContext) -> AsyncIterator[ChatChunk]:
        return self.stream_with(request, ctx, Served())

    # ---- embeddings -------------------------------------------------------------------------

    async def embed(self, request: EmbedRequest, ctx: AttemptContext) -> EmbedResponse:
        """Embeddings fall over like chat but are never hedged or re-sent: cheap and idempotent
        calls are better retried by the caller than stacked here."""
        attempts: list[Attempt] = []
        last: HeadwayError | None = None
        for m in self.members:
            if not m.provider.capabilities.embeddings:
                continue
            try:
                return await m.provider.embed(request, ctx)
            except HeadwayError as exc:
                if not exc.fallback_eligible:
                    raise
                attempts.append(Attempt(m.name, exc.message, exc.upstream_status))
                last = exc
        if last is not None and len(attempts) == 1:
            raise last
        raise AllAttemptsFailed(attempts, status=last.status if last else 502)

    async def aclose(self) -> None:
        return None  # members are owned (and closed) by the gateway
