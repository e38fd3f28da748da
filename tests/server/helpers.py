"""Running the real server in-process, gateways to put behind it, and a scripted provider."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
import yaml

from headway.config.load import default_config_text, load
from headway.errors import HeadwayError
from headway.gateway import Gateway
from headway.providers.base import AttemptContext, Capabilities
from headway.server.app import App
from headway.server.routes import MOUNTS
from headway.server.run import uvicorn_config
from headway.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    FinishReason,
    ToolCall,
    ToolCallDelta,
    Usage,
)


def sim_config_text(tmp_path: Path, *, master_key: str | None = None) -> str:
    """The embedded default config with the sim's latency at zero and files under tmp_path."""
    raw = yaml.safe_load(default_config_text())
    raw["providers"]["sim"]["sim"] = {
        "latency_p50_ms": 0,
        "latency_p99_ms": 0,
        "ttft_p50_ms": 0,
        "ms_per_token": 0,
    }
    raw["ledger"] = {"sqlite_path": str(tmp_path / "headway.db")}
    if master_key is not None:
        raw.setdefault("server", {})["master_key"] = master_key
    text: str = yaml.safe_dump(raw)
    return text


def sim_gateway(tmp_path: Path, *, master_key: str | None = None) -> Gateway:
    return Gateway(load(text=sim_config_text(tmp_path, master_key=master_key), env={}))


SCRIPTED_CONFIG = """
providers: {p: {kind: sim}}
models:
  m: {provider: p, model: m}
  m2: {provider: p, model: m2}
  e: {provider: p, model: e, embeddings: true}
routes:
  both: {chain: [m, m2]}
  # no re-sends, no mid-stream recovery: the provider's error reaches the server unchanged
  solo: {chain: [m], retry: {max_attempts: 1}, recovery: {enabled: false}}
"""


class Scripted:
    """A deterministic provider. Streams `words` one per chunk; `fail_before` raises before the
    first chunk, `fail_after` after `fail_at` chunks; `hang` waits forever after the first chunk.
    Records the last request and context, and whether a stream was closed early."""

    capabilities = Capabilities(embeddings=True)

    def __init__(
        self,
        name: str,
        *,
        words: Sequence[str] = ("Hello", " there", "!"),
        tool_call: ToolCall | None = None,
        fail_before: BaseException | None = None,
        fail_after: BaseException | None = None,
        fail_at: int = 1,
        hang: bool = False,
    ) -> None:
        self.name = name
        self.words = tuple(words)
        self.tool_call = tool_call
        self.fail_before = fail_before
        self.fail_after = fail_after
        self.fail_at = fail_at
        self.hang = hang
        self.last: ChatRequest | None = None
        self.last_ctx: AttemptContext | None = None
        self.closed = asyncio.Event()
        self.completed = False
        self.shut = False

    def _usage(self) -> Usage:
        return Usage(input_tokens=7, output_tokens=len(self.words), cached_input_tokens=2)

    async def chat(self, request: ChatRequest, ctx: AttemptContext) -> ChatResponse:
        self.last, self.last_ctx = request, ctx
        if self.fail_before is not None:
            raise self.fail_before
        if self.tool_call is not None:
            return ChatResponse(
                id="chatcmpl-s",
                model=self.name,
                content=None,
                finish_reason=FinishReason.TOOL_CALLS,
                usage=self._usage(),
                tool_calls=(self.tool_call,),
            )
        return ChatResponse(
            id="chatcmpl-s",
            model=self.name,
            content="".join(self.words),
            finish_reason=FinishReason.STOP,
            usage=self._usage(),
        )

    async def stream(self, request: ChatRequest, ctx: AttemptContext) -> AsyncIterator[ChatChunk]:
        self.last, self.last_ctx = request, ctx
        if self.fail_before is not None:
            raise self.fail_before
        try:
            if self.tool_call is not None:
                call = self.tool_call
                half = len(call.arguments) // 2
                yield ChatChunk(
                    "chatcmpl-s", self.name, tool_calls=(ToolCallDelta(0, call.id, call.name),)
                )
                yield ChatChunk(
                    "chatcmpl-s",
                    self.name,
                    tool_calls=(ToolCallDelta(0, arguments=call.arguments[:half]),),
                )
                yield ChatChunk(
                    "chatcmpl-s",
                    self.name,
                    tool_calls=(ToolCallDelta(0, arguments=call.arguments[half:]),),
                )
                yield ChatChunk(
                    "chatcmpl-s",
                    self.name,
                    finish_reason=FinishReason.TOOL_CALLS,
                    usage=self._usage(),
                )
                self.completed = True
                return
            for i, word in enumerate(self.words):
                if self.fail_after is not None and i == self.fail_at:
                    raise self.fail_after
                yield ChatChunk("chatcmpl-s", self.name, text=word)
                if self.hang:
                    await asyncio.Event().wait()
            yield ChatChunk(
                "chatcmpl-s", self.name, finish_reason=FinishReason.STOP, usage=self._usage()
            )
            self.completed = True
        finally:
            if not self.completed:
                self.closed.set()

    async def embed(self, request: EmbedRequest, ctx: AttemptContext) -> EmbedResponse:
        vectors = [[0.5, -0.25, float(i)] for i in range(len(request.inputs))]
        return EmbedResponse(model=self.name, vectors=vectors, usage=Usage(input_tokens=3))

    async def aclose(self) -> None:
        self.shut = True


def scripted_gateway(
    m: Scripted | None = None, m2: Scripted | None = None, *, master_key: str | None = None
) -> Gateway:
    files = tempfile.mkdtemp(prefix="headway-server-test-")  # ledger/keys database, if mounted
    text = SCRIPTED_CONFIG + f"ledger: {{sqlite_path: {files}/headway.db}}\n"
    if master_key is not None:
        text += f"server: {{master_key: {master_key}}}\n"
    providers = {"m": m or Scripted("m"), "m2": m2 or Scripted("m2"), "e": Scripted("e")}
    gateway = Gateway(load(text=text, env={}), providers=providers)
    weakref.finalize(gateway, shutil.rmtree, files, True)
    return gateway


def fails(err: HeadwayError) -> Scripted:
    return Scripted("m", fail_before=err)


@asynccontextmanager
async def running(
    gateway: Gateway,
    *,
    mounts: Sequence[str] = MOUNTS,
    max_body_bytes: int | None = None,
    http: str = "native",
) -> AsyncIterator[str]:
    """Serve `gateway` on a free loopback port with the server `headway serve` runs (native), or
    with uvicorn (`http="uvicorn"`, the alternative); yields the base URL."""
    if http == "native":
        from tests.server.native_support import serving

        async with serving(gateway, mounts=mounts, max_body_bytes=max_body_bytes) as srv:
            yield srv.base
        return
    app = App(gateway, mounts=mounts, max_body_bytes=max_body_bytes)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, "warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # waiting for the server to listen, not for a timer under test
        if task.done():
            task.result()
            raise RuntimeError("server exited during start-up")
        await asyncio.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
