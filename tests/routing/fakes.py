"""Scriptable in-process providers for chain tests, driven by a FakeClock (no network, no real
time). Each call takes the next scripted behaviour (the last one repeats)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from headway.clock import FakeClock
from headway.errors import HeadwayError, InvalidRequest, StreamInterrupted
from headway.providers.base import AttemptContext, Capabilities
from headway.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    FinishReason,
    Message,
    Usage,
)

T = TypeVar("T")

TOKENS = tuple(f"w{i} " for i in range(60))
ANSWER = "".join(TOKENS)
FOREVER = 10**9


@dataclass(frozen=True)
class Act:
    """One call's behaviour. `error` fails the call (after `latency`); `hang` never answers;
    streams: `cut_after` tokens then a break, `stall_after` tokens then a `stall_s` pause,
    `malformed_at` raises a malformed-chunk error at that token."""

    latency: float = 0.0
    ttft: float = 0.0
    per_token: float = 0.0
    error: HeadwayError | None = None
    hang: bool = False
    cut_after: int | None = None
    stall_after: int | None = None
    stall_s: float = 0.0
    #: after the stall, report it as an interruption: an HTTP provider's own stall limit fires
    stall_breaks: bool = False
    malformed_at: int | None = None
    usage: bool = True


OK = Act()


def prompt_tokens(request: ChatRequest) -> int:
    return sum(len(m.text().split()) for m in request.messages) + 3


class FakeProvider:
    def __init__(
        self,
        name: str,
        clock: FakeClock,
        acts: Sequence[Act] = (OK,),
        *,
        prefill: bool = False,
        rejects_prefill: bool = False,
        tokens: Sequence[str] = TOKENS,
    ) -> None:
        self.name = name
        self.clock = clock
        self.acts = list(acts)
        self.tokens = tuple(tokens)
        self.rejects_prefill = rejects_prefill
        self.capabilities = Capabilities(prefill=prefill)
        self.requests: list[ChatRequest] = []
        self.contexts: list[AttemptContext] = []
        self.cancelled = 0

    @property
    def calls(self) -> int:
        return len(self.requests)

    def _act(self) -> Act:
        i = len(self.requests) - 1
        return self.acts[min(i, len(self.acts) - 1)]

    def _begin(self, request: ChatRequest, ctx: AttemptContext) -> Act:
        self.requests.append(request)
        self.contexts.append(ctx)
        last = request.messages[-1]
        if last.role == "assistant" and self.rejects_prefill:
            raise InvalidRequest("assistant prefill is not supported", provider=self.name)
        return self._act()

    def _remaining(self, request: ChatRequest) -> list[str]:
        """The tokens still to say: all of them, or what follows an assistant prefill."""
        last: Message = request.messages[-1]
        if last.role != "assistant":
            return list(self.tokens)
        prefix = last.text()
        out: list[str] = []
        said = ""
        for tok in self.tokens:
            if len(said) >= len(prefix):
                out.append(tok)
            elif len(said) + len(tok) > len(prefix):
                out.append(tok[len(prefix) - len(said) :])
            said += tok
        return out

    async def _wait(self, seconds: float) -> None:
        if seconds > 0:
            await self.clock.sleep(seconds)

    async def chat(self, request: ChatRequest, ctx: AttemptContext) -> ChatResponse:
        act = self._begin(request, ctx)
        try:
            await self._wait(FOREVER if act.hang else act.latency)
        except BaseException:
            self.cancelled += 1
            raise
        if act.error is not None:
            raise act.error
        text = "".join(self._remaining(request))
        return ChatResponse(
            id=f"chatcmpl-{self.name}",
            model=self.name,
            content=text,
            finish_reason=FinishReason.STOP,
            usage=Usage(prompt_tokens(request), len(self.tokens)),
        )

    async def stream(self, request: ChatRequest, ctx: AttemptContext) -> AsyncIterator[ChatChunk]:
        act = self._begin(request, ctx)
        cid = f"chatcmpl-{self.name}-{self.calls}"
        try:
            yield ChatChunk(id=cid, model=self.name, role="assistant")
            await self._wait(FOREVER if act.hang else max(act.ttft, act.latency))
            if act.error is not None:
                raise act.error
            said = self._remaining(request)
            for i, tok in enumerate(said):
                if act.cut_after is not None and i == act.cut_after:
                    raise StreamInterrupted("connection closed mid-stream", provider=self.name)
                if act.malformed_at is not None and i == act.malformed_at:
                    raise StreamInterrupted("malformed chunk", provider=self.name)
                if act.stall_after is not None and i == act.stall_after:
                    await self._wait(act.stall_s)
                    if act.stall_breaks:
                        raise StreamInterrupted("no data from upstream in time", provider=self.name)
                if i:
                    await self._wait(act.per_token)
                yield ChatChunk(id=cid, model=self.name, text=tok)
            yield ChatChunk(id=cid, model=self.name, finish_reason=FinishReason.STOP)
            if act.usage:
                usage = Usage(prompt_tokens(request), len(said))
                yield ChatChunk(id=cid, model=self.name, usage=usage)
        except BaseException as exc:
            if not isinstance(exc, HeadwayError):
                self.cancelled += 1
            raise

    async def embed(self, request: EmbedRequest, ctx: AttemptContext) -> EmbedResponse:
        return EmbedResponse(self.name, [[0.0] for _ in request.inputs], Usage(1, 0))

    async def aclose(self) -> None:
        return None


#: real waits of ~1 ms `drive` allows while nothing sleeps on the fake clock
IDLE_LIMIT = 10_000


async def drive(
    clock: FakeClock, aw: Awaitable[T], *, step: float = 0.5, limit: float = 10_000
) -> tuple[T, float]:
    """Run `aw` while moving the fake clock forward to each sleeper's deadline in turn (at most
    `step` at a time); returns its result and the fake time it took."""
    start = clock.monotonic()
    ended: list[float] = []

    async def run() -> T:
        try:
            return await aw
        finally:
            ended.append(clock.monotonic())

    task = asyncio.ensure_future(run())
    for _ in range(5):
        await asyncio.sleep(0)
    idle = 0
    while not task.done():
        if clock.monotonic() - start > limit:
            task.cancel()
            raise AssertionError(f"still running after {limit}s of fake time")
        due = [when for when, _, fut in clock._sleepers if not fut.done()]
        if due:
            idle = 0
            await clock.advance(min(step, max(0.0, min(due) - clock.time())))
            continue
        # Nothing sleeps on the fake clock: the call waits on real I/O (Redis, a socket). Fake
        # time must not run on meanwhile, or a slow round trip on a loaded machine passes
        # cooldowns and staleness bounds that the test means to stay within.
        idle += 1
        if idle > IDLE_LIMIT:
            task.cancel()
            raise AssertionError("still waiting on real I/O after ~10 s")
        await asyncio.sleep(0.001)
    return task.result(), ended[0] - start


async def collect(stream: AsyncIterator[ChatChunk]) -> list[ChatChunk]:
    return [c async for c in stream]
