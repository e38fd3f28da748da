"""`Gateway`: the library API, and the core the server is a thin layer over.

    async with Gateway() as gw:                       # embedded default: sim provider, memory state
        reply = await gw.chat(model="default", messages=[{"role": "user", "content": "hi"}])
        async for chunk in gw.stream(model="default", messages=[...]):
            print(chunk.text, end="")
        rows = await gw.usage(group_by="model")        # what those calls used and cost

The pipeline is composed once from config (and again, atomically, on reload); nothing is built
per request.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from headway import tokens
from headway.clock import Clock
from headway.config.runtime import RuntimeConfig
from headway.context import ANONYMOUS, Call, Principal
from headway.errors import InvalidRequest, ModelNotFound, PermissionDenied
from headway.pipeline import (
    ChatHandler,
    Stage,
    StreamHandler,
    compose,
    failed_call,
    failed_stream,
)
from headway.providers.base import AttemptContext, Provider
from headway.services import Services
from headway.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    ModelInfo,
)
from headway.wire.openai.ingress import parse_chat_request

if TYPE_CHECKING:
    from headway.ledger.record import UsageRow

#: Feature stages, outermost first. Each entry is "module:factory"; a factory takes
#: (RuntimeConfig, Services) and returns a Stage, or None when its feature is off.
STAGE_FACTORIES: tuple[str, ...] = (
    "headway.observe.stage:build",
    "headway.limits.stage:build",
    "headway.cache.stage:build",
    "headway.degrade.stage:build",
)

StageFactory = Callable[[RuntimeConfig, Services], Stage | None]


def _import(target: str) -> Any | None:
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name + ".").startswith(
            exc.name + "."
        ):  # the feature is not built yet; its own import errors surface
            return None
        raise
    return getattr(module, attr)


@dataclass(slots=True, frozen=True)
class _Pipeline:
    runtime: RuntimeConfig
    providers: Mapping[str, Provider]
    chat: ChatHandler
    stream: StreamHandler
    stages: tuple[Stage, ...]


LedgerDefault = Literal["memory", "sqlite"]


async def _closable(chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
    async for chunk in chunks:
        yield chunk


def _with_ledger_default(runtime: RuntimeConfig, default: LedgerDefault) -> RuntimeConfig:
    """A config that says nothing about the ledger records spend in memory (library use);
    `headway serve` keeps the schema default instead (SQLite `headway.db`, next to its keys)."""
    file = runtime.file
    if default == "sqlite" or "ledger" in file.model_fields_set or file.ledger.backend == "memory":
        return runtime
    ledger = file.ledger.model_copy(update={"backend": "memory"})
    return replace(runtime, file=file.model_copy(update={"ledger": ledger}))


class Gateway:
    """The gateway, in-process.

    Spend: every call's usage and cost is recorded (`call.settled` -> the ledger), readable with
    `await gw.usage(...)`. Where it goes is the config's `ledger:` section. A config without
    one (including `Gateway()`, the embedded default) keeps it **in memory** (the newest 100k
    calls): a library Gateway never creates a file its config does not name. Set
    `ledger: {sqlite_path: ...}` (or `backend: postgres`) to keep it, `ledger: {enabled: false}`
    to record nothing. `headway serve` passes `ledger_default="sqlite"`, so a server without a
    `ledger:` section writes `headway.db` in its working directory (its API keys live there too).
    """

    def __init__(
        self,
        config: RuntimeConfig | str | Path | None = None,
        *,
        clock: Clock | None = None,
        services: Services | None = None,
        providers: Mapping[str, Provider] | None = None,
        ledger_default: LedgerDefault = "memory",
    ) -> None:
        """`config`: a loaded RuntimeConfig, a path to a YAML file, or None for the embedded
        default. `providers` overrides deployments by name (tests, custom providers).
        `ledger_default`: where spend goes when the config has no `ledger:` section."""
        if not isinstance(config, RuntimeConfig):
            from headway.config.load import load

            config = load(config)
        self._services = services or Services()
        if clock is not None:
            self._services.clock = clock
        self._overrides = dict(providers or {})
        self._ledger_default: LedgerDefault = ledger_default
        self._pipeline = self._build(config)
        self._closed = False

    # ---- assembly ---------------------------------------------------------------------------

    def _build(self, runtime: RuntimeConfig) -> _Pipeline:
        from headway.ledger.listener import install as install_ledger
        from headway.providers.registry import build_provider
        from headway.routing.terminal import build as build_terminal

        runtime = _with_ledger_default(runtime, self._ledger_default)
        providers: dict[str, Provider] = {}
        for name, dep in runtime.deployments.items():
            providers[name] = self._overrides.get(name) or build_provider(dep, self._services)
        stages: list[Stage] = []
        for target in STAGE_FACTORIES:
            factory: StageFactory | None = _import(target)
            if factory is not None and (stage := factory(runtime, self._services)) is not None:
                stages.append(stage)
        terminal = build_terminal(runtime, providers, self._services)
        # once per Services: a reload keeps the writer (and its queue) it started with
        install_ledger(runtime, self._services)
        chat, stream = compose(stages, terminal)
        return _Pipeline(runtime, providers, chat, stream, tuple(stages))

    @property
    def runtime(self) -> RuntimeConfig:
        return self._pipeline.runtime

    @property
    def services(self) -> Services:
        return self._services

    @property
    def providers(self) -> Mapping[str, Provider]:
        return self._pipeline.providers

    async def reload(self, config: RuntimeConfig | str | Path) -> None:
        """Swap in a new config atomically: calls in flight finish on the pipeline they started on."""
        if not isinstance(config, RuntimeConfig):
            from headway.config.load import load

            config = load(config)
        await self.warm(config)
        old = self._pipeline
        self._pipeline = self._build(config)
        for name, provider in old.providers.items():
            if self._pipeline.providers.get(name) is not provider:
                await provider.aclose()

    # ---- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Gateway:
        await self.warm()
        return self

    async def warm(self, config: RuntimeConfig | None = None, *, on_loop: bool = False) -> None:
        """Load what the first calls would otherwise load on the event loop: the token
        encodings `config`'s deployments are counted in (the limits estimate, and the settlement
        of a stream cut before its usage). Parsing a vocabulary holds the loop for 0.25 s on a
        quiet machine and 0.3-1.7 s under load, stalling every call in flight (seen in the bench:
        the first stream a client dropped stalled all others), so it is done here, once per
        process, off the loop. The server calls this at start-up, before it freezes its heap,
        with `on_loop`: nothing runs on the loop yet, and a vocabulary parsed on the loop's own
        thread stays out of a second malloc arena (47 instead of 52 MB for `o200k_base`)."""
        runtime = config or self.runtime
        names = {tokens.encoding_for_model(d.model.model) for d in runtime.deployments.values()}
        names.add(runtime.file.limits.estimate.encoding)
        for name in sorted(names & set(tokens.ENCODINGS)):
            if on_loop:
                tokens.get_encoding(name)
            else:
                await asyncio.to_thread(tokens.get_encoding, name)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        for provider in self._pipeline.providers.values():
            await provider.aclose()
        for stage in self._pipeline.stages:
            close = getattr(stage, "aclose", None)
            if close is not None:
                await close()
        await self._services.aclose()

    # ---- calls ------------------------------------------------------------------------------

    def _call(
        self, request: ChatRequest | None, call: Call | None, kwargs: dict[str, Any], stream: bool
    ) -> Call:
        if call is not None:
            return call
        principal = kwargs.pop("principal", None)
        if request is None:
            # `kwargs` is this call's own dict: no copy needed. Unset rather than False when
            # not streaming (the default): a field fewer to check, on every library call
            if stream:
                kwargs["stream"] = True
            else:
                kwargs.pop("stream", None)
            request = parse_chat_request(kwargs)
        elif request.stream != stream:
            request = replace(request, stream=stream)
        # the shared anonymous principal (a frozen value) rather than a new one per call;
        # positional, and `started` set after: keywords to a class cost ~1k instructions each
        prepared = Call(request, principal if isinstance(principal, Principal) else ANONYMOUS)
        prepared.started = self._services.clock.monotonic()
        return prepared

    def chat(
        self, request: ChatRequest | None = None, /, *, call: Call | None = None, **kwargs: Any
    ) -> Coroutine[Any, Any, ChatResponse]:
        """Answer a chat call: `await gw.chat(...)`. Pass a ChatRequest, a prepared Call, or
        OpenAI-style keyword arguments (`model=`, `messages=[{"role": ..., "content": ...}]`,
        `max_tokens=` ...). A bad request raises where the call is awaited, as from a coroutine."""
        # The pipeline's own awaitable, not a coroutine awaiting it: a frame fewer to create
        # and to pass through on every resumption.
        try:
            return self._pipeline.chat(self._call(request, call, kwargs, stream=False))
        except Exception as exc:  # noqa: BLE001 - raised from the awaitable, where callers expect it
            return failed_call(exc)

    def chat_call(self, call: Call) -> Coroutine[Any, Any, ChatResponse]:
        """`chat(call=call)`: answer a prepared call, without the keyword handling (the
        server's path, once per request)."""
        try:
            return self._pipeline.chat(call)
        except Exception as exc:  # noqa: BLE001 - raised from the awaitable, as `chat` does
            return failed_call(exc)

    def stream(
        self, request: ChatRequest | None = None, /, *, call: Call | None = None, **kwargs: Any
    ) -> AsyncIterator[ChatChunk]:
        """Stream a chat call as neutral chunks; the last carries the finish reason and usage.
        Closing this stream early (`aclose`) closes the call at once: its upstream stream is
        cancelled and its usage settled before `aclose` returns. A bad request raises at the
        first `anext`, as from an async generator."""
        try:
            prepared = self._call(request, call, kwargs, stream=True)
        except Exception as exc:  # noqa: BLE001 - raised from the stream, where callers expect it
            return failed_stream(exc)
        chunks = self._pipeline.stream(prepared)
        # The pipeline's own generator, not one more relaying each chunk; a stage that returns
        # a plain iterator is wrapped so that `aclose` is always there.
        return chunks if hasattr(chunks, "aclose") else _closable(chunks)

    async def embed(
        self,
        request: EmbedRequest | None = None,
        /,
        *,
        model: str | None = None,
        input: str | list[str] | None = None,
        request_id: str = "",
        principal: Principal | None = None,
    ) -> EmbedResponse:
        """Embed with one embedding deployment. `principal`: who asks; a key restricted by
        `allowed_models` gets PermissionDenied for any other model."""
        if request is None:
            if model is None or input is None:
                raise InvalidRequest("embed needs `model` and `input`")
            inputs = (input,) if isinstance(input, str) else tuple(input)
            request = EmbedRequest(model=model, inputs=inputs)
        pipeline = self._pipeline
        runtime = pipeline.runtime
        dep = runtime.deployments.get(request.model)
        if dep is None or not dep.model.embeddings:
            names = [n for n, d in runtime.deployments.items() if d.model.embeddings]
            raise ModelNotFound(
                f"The embedding model `{request.model}` does not exist. Available: {', '.join(names)}",
                param="model",
            )
        allowed = principal.allowed_models if principal is not None else None
        if allowed is not None and request.model not in allowed:
            raise PermissionDenied(f"this key may not use model `{request.model}`", param="model")
        provider = pipeline.providers[request.model]
        return await provider.embed(request, AttemptContext(request_id=request_id))

    async def usage(self, group_by: str = "day", **filters: str | float) -> list[UsageRow]:
        """Recorded spend, summed per `group_by` (key, user, team, model, day, tenant, route).
        `filters`: since=, until= (dates, ISO times or epoch seconds), tenant=, key=, user=,
        team=, model=, limit=. Calls settled so far are flushed first, so they all count."""
        from headway.ledger.listener import EXTRA
        from headway.ledger.record import build_query
        from headway.ledger.writer import LedgerWriter

        writer = self._services.extras.get(EXTRA)
        if not isinstance(writer, LedgerWriter):
            raise InvalidRequest("spend is not recorded: the config sets ledger.enabled: false")
        params = {k: str(v) for k, v in filters.items()}
        params["group_by"] = group_by
        query = build_query(params)
        await writer.flush()
        return await writer.ledger.query(query)

    def models(self) -> list[ModelInfo]:
        runtime = self._pipeline.runtime
        out = [ModelInfo(id=name, owned_by="headway") for name in runtime.routes]
        for name, dep in runtime.deployments.items():
            sunset = dep.model.sunset.isoformat() if dep.model.sunset else None
            out.append(ModelInfo(id=name, owned_by=dep.provider_name, sunset=sunset))
        return out
