"""A terminal for stage tests: a chain over scripted deployments that honours what the limits
stage asks of routing (`call.skip_deployments`, `call.upstream_block`) and reports rate-limit
snapshots through `on_ratelimit`, as the routing terminal does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from headway.config.runtime import RuntimeConfig
from headway.context import Call
from headway.errors import HeadwayError
from headway.providers.base import RateLimitSnapshot
from headway.types import ChatChunk, ChatRequest, ChatResponse, FinishReason, Usage


@dataclass
class Script:
    usage: Usage = field(default_factory=lambda: Usage(100, 50))
    fail: HeadwayError | None = None
    #: streams: chunks before `fail` is raised (None: fail before the first chunk)
    fail_after: int | None = None
    #: streams: send usage in the last chunk
    stream_usage: bool = True
    snapshot: RateLimitSnapshot | None = None
    #: streams: wait for this before each chunk after the first (a slow upstream)
    gate: asyncio.Event | None = None


class FakeTerminal:
    def __init__(
        self, runtime: RuntimeConfig, hooks: Callable[[str], Callable[..., None]] | None = None
    ) -> None:
        self.runtime = runtime
        self.scripts: dict[str, Script] = {name: Script() for name in runtime.deployments}
        self.seen: list[tuple[str, ChatRequest]] = []
        self.hooks = hooks

    def _chain(self, call: Call) -> list[str]:
        if call.upstream_block is not None:
            raise call.upstream_block
        route = self.runtime.routes.get(call.request.model)
        chain = route.chain if route else (call.request.model,)
        return [d for d in chain if d not in call.skip_deployments]

    def _report(self, name: str) -> None:
        snap = self.scripts[name].snapshot
        if snap is not None and self.hooks is not None:
            self.hooks(name)(snap)

    async def chat(self, call: Call) -> ChatResponse:
        last: HeadwayError | None = None
        for name in self._chain(call):
            script = self.scripts[name]
            self.seen.append((name, call.request))
            self._report(name)
            if script.fail is not None:
                last = script.fail
                continue
            call.served.deployment = name
            call.served.usage = script.usage
            return ChatResponse("id", name, "ok", FinishReason.STOP, script.usage)
        assert last is not None
        raise last

    async def stream(self, call: Call) -> AsyncIterator[ChatChunk]:
        name = self._chain(call)[0]
        script = self.scripts[name]
        self.seen.append((name, call.request))
        if script.fail is not None and script.fail_after is None:
            raise script.fail
        call.served.deployment = name
        for i in range(3):
            if script.fail is not None and i == script.fail_after:
                raise script.fail
            if i and script.gate is not None:
                await script.gate.wait()
            yield ChatChunk("id", name, text="hello world ")
        usage = script.usage if script.stream_usage else None
        if usage is not None:
            call.served.usage = usage
        yield ChatChunk("id", name, finish_reason=FinishReason.STOP, usage=usage)
