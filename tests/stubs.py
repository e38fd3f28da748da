"""A tiny deterministic Provider for tests of the core (no network, no timing)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from headway.errors import HeadwayError
from headway.providers.base import AttemptContext, Capabilities
from headway.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    FinishReason,
    Usage,
)


class StubProvider:
    """Echoes the last user message. `fail` makes every call raise that error."""

    capabilities = Capabilities(embeddings=True)

    def __init__(self, name: str, *, fail: HeadwayError | None = None) -> None:
        self.name = name
        self.fail = fail
        self.calls = 0

    def _answer(self, request: ChatRequest) -> str:
        return f"{self.name}: {request.messages[-1].text()}"

    async def chat(self, request: ChatRequest, ctx: AttemptContext) -> ChatResponse:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        text = self._answer(request)
        return ChatResponse(
            id="chatcmpl-stub",
            model=self.name,
            content=text,
            finish_reason=FinishReason.STOP,
            usage=Usage(input_tokens=5, output_tokens=len(text.split())),
        )

    async def stream(self, request: ChatRequest, ctx: AttemptContext) -> AsyncIterator[ChatChunk]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        words = self._answer(request).split(" ")
        for i, word in enumerate(words):
            yield ChatChunk(
                id="chatcmpl-stub", model=self.name, text=word if i == 0 else " " + word
            )
        yield ChatChunk(
            id="chatcmpl-stub",
            model=self.name,
            finish_reason=FinishReason.STOP,
            usage=Usage(input_tokens=5, output_tokens=len(words)),
        )

    async def embed(self, request: EmbedRequest, ctx: AttemptContext) -> EmbedResponse:
        return EmbedResponse(
            model=self.name, vectors=[[1.0, 0.0] for _ in request.inputs], usage=Usage(1, 0)
        )

    async def aclose(self) -> None:
        return None
