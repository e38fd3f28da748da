"""Streaming through a chain: deadlines on every chunk, fallback before the first token, hedging,
and mid-stream recovery after it.

Before any text reaches the caller a failed stream falls over like a chat call. After text reached
the caller, a break (cut connection, stall, malformed chunk, missing terminator, in-band upstream
error) is recovered: the call continues on the same or another deployment, with the delivered text
as an assistant prefill where the provider supports it, or restarted with the delivered prefix
skipped where it does not (headway.routing.splice). Only when no candidate can continue does the
stream end, and then with an explicit error, never a clean close after partial text. Usage counts
every attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING

from headway.clock import Clock, SystemClock
from headway.context import Served
from headway.errors import Attempt, HeadwayError, InvalidRequest, StreamInterrupted, UpstreamTimeout
from headway.pipeline import aclose
from headway.providers.base import AttemptContext, Provider
from headway.routing.cursor import Cursor
from headway.routing.deadline import after
from headway.routing.hedge import hedge_delay
from headway.routing.policy import Member, RoutePolicy
from headway.routing.race import Runner, race
from headway.routing.retry import Action
from headway.routing.splice import Diverged, Mode, Splicer
from headway.transport.watchdog import StreamWatchdog
from headway.types import ChatChunk, ChatRequest

if TYPE_CHECKING:  # chain.py imports this module
    from headway.routing.chain import Chain


def _slow(exc: HeadwayError, silent_s: float, policy: RoutePolicy) -> bool:
    """Did the deployment break by going quiet (a first-token or stall deadline, whoever
    enforced it) rather than by a cut or a bad chunk? Providers report a stall after the first
    token as an interruption, so the silence before the error decides."""
    if isinstance(exc, UpstreamTimeout):
        return True
    stall = policy.stall_timeout_s
    return stall is not None and silent_s >= stall * 0.9


def _monotonic(clock: Clock) -> Callable[[], float]:
    # SystemClock.monotonic is time.monotonic behind a Python frame, read twice per chunk
    return time.monotonic if isinstance(clock, SystemClock) else clock.monotonic


#: what opens a provider's stream: `Provider.stream`, or `HttpProvider.stream_watched`
Opener = Callable[[ChatRequest, AttemptContext], AsyncIterator[ChatChunk]]


def _opener(provider: Provider, clock: Clock) -> Opener:
    """`stream_watched` when the provider keeps its limits on the same clock as the chain (the
    system clock): the attempt's watchdog times every read of the stream, so the provider need
    not run a second one for the same limits. Else `stream`."""
    if isinstance(clock, SystemClock) and getattr(provider, "bounds_deadlines", False):
        watched: Opener | None = getattr(provider, "stream_watched", None)
        if watched is not None:
            return watched
    return provider.stream


def _is_first_token(chunk: ChatChunk) -> bool:
    return bool(chunk.text or chunk.tool_calls or chunk.refusal) or chunk.finish_reason is not None


class _Attempt:
    """The chain's deadlines on one streamed attempt: the first token by the first-token deadline
    (and the attempt timeout), then a chunk at least every stall timeout, never past the call's
    deadline; one watchdog timer enforces all three (headway.transport.watchdog). A stream that
    stops without a finish reason is interrupted.

    Not a generator wrapped around the provider's stream: every generator layer costs each chunk
    a resumption, so `stream_call` reads the provider itself and calls `arrived` per chunk."""

    __slots__ = ("actx", "dog", "finished", "first", "name", "opener", "res", "stall", "start")

    def __init__(self, chain: Chain, m: Member, ctx: AttemptContext) -> None:
        res = chain.res
        self.res = res
        self.name = m.name
        self.opener = _opener(m.provider, res.clock)
        self.stall = chain.policy.stall_timeout_s
        self.start = start = res.clock.monotonic()
        self.actx = actx = chain.attempt_context(ctx, m, start, stream=True)
        # positional: keywords to a class cost ~1k instructions each on Python 3.11 (per stream)
        self.dog = StreamWatchdog(
            res.clock, start, ctx.deadline, after(start, actx.ttft_timeout), self.stall
        )
        self.first = False
        self.finished = False

    def arrived(self, chunk: ChatChunk, now: float) -> None:
        """A chunk arrived at `now` (`stream_call` inlines this once output has started)."""
        if self.first:
            self.dog.last = now
        elif _is_first_token(chunk):
            self.first = True
            self.res.window("ttft", self.name).add(now - self.start)
            self.dog.start_output(now)
        if chunk.finish_reason is not None:
            self.finished = True

    def timed_out(self, exc: BaseException) -> UpstreamTimeout:
        """The timeout for `exc` (a provider's bare TimeoutError, or this attempt's watchdog
        cancelling the wait); re-raises any other cancellation."""
        if isinstance(exc, asyncio.CancelledError) and not self.dog.expired():
            raise exc
        if self.first:
            what = f"stalled: no chunk for {self.stall}s"
        else:
            what = f"no first token after {self.res.clock.monotonic() - self.start:.3g}s"
        return UpstreamTimeout(what, provider=self.name)

    def ended(self) -> None:
        if not self.finished:
            raise StreamInterrupted("the stream ended without a finish reason", provider=self.name)


async def attempt_stream(
    chain: Chain, m: Member, request: ChatRequest, ctx: AttemptContext
) -> AsyncGenerator[ChatChunk, None]:
    """One streamed attempt with its deadlines enforced (`_Attempt`), as a generator of its own:
    what a hedged attempt runs in its `Pump`."""
    att = _Attempt(chain, m, ctx)
    monotonic = _monotonic(chain.res.clock)
    dog = att.dog
    agen = att.opener(request, att.actx)
    step = agen.__anext__
    try:
        while True:
            dog.begin()
            try:
                chunk = await step()
            except StopAsyncIteration:
                break
            except (asyncio.CancelledError, TimeoutError) as exc:
                raise att.timed_out(exc) from None
            finally:
                dog.waiting = False
            att.arrived(chunk, monotonic())
            yield chunk
    finally:
        dog.close()
        await aclose(agen)
    att.ended()


class Pump:
    """A streamed attempt running in its own task, so that two can race (hedging)."""

    def __init__(self, chunks: AsyncGenerator[ChatChunk, None]) -> None:
        self.queue: asyncio.Queue[ChatChunk | BaseException | None] = asyncio.Queue()
        self.first: asyncio.Future[Pump] = asyncio.get_running_loop().create_future()
        self.task = asyncio.ensure_future(self._run(chunks))

    async def _run(self, chunks: AsyncGenerator[ChatChunk, None]) -> None:
        try:
            async for chunk in chunks:
                if not self.first.done() and _is_first_token(chunk):
                    self.first.set_result(self)
                self.queue.put_nowait(chunk)
            self.queue.put_nowait(None)
        except Exception as exc:  # noqa: BLE001 - handed to whoever reads the chunks, who raises it
            if not self.first.done():
                self.first.set_exception(exc)
            self.queue.put_nowait(exc)
        finally:
            if not self.first.done():
                self.first.set_result(self)
            await chunks.aclose()

    async def chunks(self) -> AsyncGenerator[ChatChunk, None]:
        try:
            while True:
                item = await self.queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.stop()

    def stop(self) -> None:
        if not self.task.done():
            self.task.cancel()
        if not self.first.done():
            self.first.cancel()


async def _hedged_open(
    chain: Chain, cur: Cursor, m: Member, request: ChatRequest, ctx: AttemptContext
) -> tuple[Member, AsyncGenerator[ChatChunk, None]]:
    """Open the first attempt, hedged: returns the member whose first token came first, its probe
    flag in `cur.probe`, and its chunks; raises the last failure when every runner failed."""
    assert chain.policy.hedge is not None
    res = chain.res
    delay = hedge_delay(chain.policy.hedge, res.window("ttft", m.name))

    def runner(member: Member, idx: int, probe: bool) -> Runner[Pump]:
        pump = Pump(attempt_stream(chain, member, request, ctx))
        return Runner(member, idx, probe, pump.first, pump.stop)

    async def launch() -> Runner[Pump] | None:
        target = await cur.peek_healthy()
        if target is None:
            return None
        idx, hm, probe = target
        cur.attempts += 1
        cur.served.attempts += 1
        res.events.emit("hedge.sent", deployment=hm.name, primary=m.name, delay_s=delay)
        return runner(hm, idx, probe)

    began = res.clock.monotonic()
    try:
        result = await race(res.clock, runner(m, cur.index, cur.probe), delay, launch)
    finally:
        cur.served.upstream_s += res.clock.monotonic() - began  # up to the winner's first token
    for loser in result.losers:
        cur.released(loser.member, loser.probe)
    failures = result.failures if result.winner is not None else result.failures[:-1]
    for r, exc in failures:
        if isinstance(exc, HeadwayError):
            await cur.failed(r.member, exc, r.probe)
        else:
            cur.released(r.member, r.probe)
    if result.winner is None:
        r, exc = result.failures[-1]
        cur.move_to(r.index)
        cur.probe = r.probe
        raise exc
    w = result.winner
    cur.move_to(w.index)
    cur.probe = w.probe
    if result.hedged:
        res.events.emit("hedge.won", deployment=w.member.name, hedge=w.member is not m)
    return w.member, w.task.result().chunks()


async def stream_call(
    chain: Chain,
    request: ChatRequest,
    ctx: AttemptContext,
    served: Served,
    skip: frozenset[str] = frozenset(),
) -> AsyncIterator[ChatChunk]:
    res = chain.res
    policy = chain.policy
    clock = res.clock
    monotonic = _monotonic(clock)
    events = res.events
    chain.budget.record_call(monotonic())
    cur = chain.cursor(ctx.deadline, served, skip)
    sp = Splicer(request)
    no_prefill: set[str] = set()
    hedge = policy.hedge is not None and len(chain.members) > 1
    while (m := await cur.next()) is not None:
        mode = sp.mode_for(m.prefill and m.name not in no_prefill)
        sp.begin(mode)
        delivered_before = sp.delivered_chunks
        settled = False
        ended = False  # the provider's stream is over: nothing to close
        announced = False
        last_chunk = monotonic()
        chunks: AsyncIterator[ChatChunk] | None = None
        att: _Attempt | None = None  # None: a hedged attempt, whose Pump enforces its deadlines
        try:
            if hedge:
                hedge = False
                m, chunks = await _hedged_open(chain, cur, m, request, ctx)
            else:
                att = _Attempt(chain, m, ctx)
                chunks = att.opener(sp.request_for(mode), att.actx)
            dog = att.dog if att is not None else None
            step = chunks.__anext__
            while True:
                # only the wait for the provider's next chunk is upstream time; the caller's
                # reading (while this generator is suspended in `yield`) is not
                began = monotonic()
                if dog is not None:
                    dog.begin()
                try:
                    chunk = await step()
                except StopAsyncIteration:
                    ended = True
                    if att is not None:
                        att.ended()
                    break
                except (asyncio.CancelledError, TimeoutError) as exc:
                    if att is None:
                        raise
                    raise att.timed_out(exc) from None
                finally:
                    now = monotonic()
                    served.upstream_s += now - began
                    if dog is not None:
                        dog.waiting = False
                # only after a chunk arrived: on an error, the silence since the last chunk is
                # what tells a stalled deployment (fall back) from a cut one (`_slow`)
                last_chunk = now
                if att is not None:
                    if att.first:
                        att.dog.last = last_chunk  # the stall limit counts from here
                    else:
                        att.arrived(chunk, last_chunk)
                    if chunk.finish_reason is not None:
                        att.finished = True
                out = sp.accept(chunk)
                if out is None:
                    continue
                if not announced:
                    announced = True
                    served.deployment = m.name
                    served.upstream_model = m.upstream_model
                    served.fallback_depth = cur.index
                yield out
            settled = True
        except Diverged as exc:
            settled = True
            sp.end_attempt()
            await cur.succeeded(m, cur.probe)  # it answered; its answer just cannot be spliced
            cur.log.append(Attempt(m.name, f"restart not spliceable: {exc}"))
            events.emit("stream.diverged", deployment=m.name)
            cur.advance()
            continue
        except HeadwayError as exc:
            settled = True
            sp.end_attempt()
            m = chain.members[cur.index]
            await cur.failed(m, exc, cur.probe)
            if sp.finish is not None:
                break  # the stream broke after its finish chunk: the answer is whole
            rejected = mode is Mode.PREFILL and isinstance(exc, InvalidRequest)
            if rejected and sp.delivered_chunks == delivered_before:
                no_prefill.add(m.name)  # same member again, restarted without prefill
                events.emit("stream.prefill_rejected", deployment=m.name)
                continue
            if not sp.started:
                decision = cur.decide(m, exc)
                if decision.action is Action.RETRY and decision.delay > 0:
                    await clock.sleep(decision.delay)
                    served.wait_s += decision.delay
                elif decision.action is Action.FAIL:
                    break
                continue
            if not (policy.recovery and sp.resumable and exc.fallback_eligible):
                events.emit("stream.unrecoverable", deployment=m.name, error=exc.message)
                raise
            if not cur.recovering or sp.delivered_chunks > delivered_before:
                events.emit(
                    "stream.interrupted",
                    deployment=m.name,
                    delivered_chars=len(sp.text),
                    error=exc.message,
                )
                cur.recover_from(cur.index, slow=_slow(exc, clock.monotonic() - last_chunk, policy))
            else:
                cur.advance()
            continue
        finally:
            if att is not None:
                att.dog.close()
            if chunks is not None and not ended:
                with contextlib.suppress(HeadwayError):
                    await aclose(chunks)
            if not settled:
                cur.released(m, cur.probe)
        sp.end_attempt()
        await cur.succeeded(m, cur.probe)
        if cur.recovering:
            events.emit("stream.recovered", deployment=m.name, mode=mode.value)
        served.usage = sp.usage
        yield sp.final_chunk()
        return
    if sp.finish is not None:
        served.usage = sp.usage
        yield sp.final_chunk()
        return
    if sp.started:
        events.emit("stream.recovery_failed", delivered_chars=len(sp.text))
        err = cur.error()
        if isinstance(err, StreamInterrupted) or len(cur.log) > 1:
            raise err
        raise StreamInterrupted(f"the stream broke and could not be resumed: {err.message}")
    raise cur.error()
