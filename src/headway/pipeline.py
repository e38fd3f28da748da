"""Stages and their composition.

A stage wraps the rest of the pipeline: it gets the call and the next handler, and may answer
itself (a cache hit), change the call, or act on what comes back (settle a reservation). Streams
are first-class: every stage has a streaming method too, so accounting, caching and deadlines hold
for streamed calls. `compose` builds the handlers once, at start-up or config reload; nothing is
assembled per request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, Protocol

from headway.context import Call
from headway.types import ChatChunk, ChatResponse

ChatHandler = Callable[[Call], Coroutine[Any, Any, ChatResponse]]
StreamHandler = Callable[[Call], AsyncIterator[ChatChunk]]


async def aclose(stream: AsyncIterator[Any]) -> None:
    """Close `stream` now when it can be closed. The stream protocols promise an async iterator,
    not a generator, so `aclose` may be missing; closing early releases what the stream holds
    (an upstream connection, a reservation) instead of leaving it to the garbage collector."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


class Stage(Protocol):
    name: str

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse: ...

    def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        """An async generator. Work before its first `yield` happens before any byte is sent,
        so errors raised there still reach the caller as a plain HTTP error."""
        ...


class PassThrough:
    """Base for stages that only care about one of the two paths."""

    name = "pass"

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        return await nxt(call)

    async def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        async for chunk in nxt(call):
            yield chunk


async def failed_call(exc: BaseException) -> ChatResponse:
    """An awaitable that raises `exc`: for handlers that return the pipeline's awaitable without
    being coroutines themselves, so that errors still come out where a caller awaits."""
    raise exc


async def failed_stream(exc: BaseException) -> AsyncIterator[ChatChunk]:
    """A stream whose first `anext` raises `exc`: for handlers that return a stream without
    being generators themselves, so that errors still come out where a caller iterates."""
    raise exc
    yield  # pragma: no cover - unreachable; makes this an async generator


class Terminal(Protocol):
    """The innermost handler: sends the call to a provider (or a chain of them)."""

    async def chat(self, call: Call) -> ChatResponse: ...

    def stream(self, call: Call) -> AsyncIterator[ChatChunk]: ...


# The handlers return the stage's own awaitable / iterator instead of wrapping it in one more
# coroutine: a layer fewer to create, enter and unwind per stage and call.


def _bind_chat(stage: Stage, nxt: ChatHandler) -> ChatHandler:
    chat = stage.chat

    def handler(call: Call) -> Coroutine[Any, Any, ChatResponse]:
        return chat(call, nxt)

    return handler


def _bind_stream(stage: Stage, nxt: StreamHandler) -> StreamHandler:
    stream = stage.stream

    def handler(call: Call) -> AsyncIterator[ChatChunk]:
        return stream(call, nxt)

    return handler


def compose(stages: Sequence[Stage], terminal: Terminal) -> tuple[ChatHandler, StreamHandler]:
    """Wrap `terminal` in `stages`; the first stage is the outermost."""
    chat: ChatHandler = terminal.chat
    stream: StreamHandler = terminal.stream
    for stage in reversed(stages):
        chat = _bind_chat(stage, chat)
        stream = _bind_stream(stage, stream)
    return chat, stream
