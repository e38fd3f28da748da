"""`Gateway`: the library API, and the core the server is a thin layer over.

    async with Gateway() as gw:                       # embedded default: sim provider, memory state
        reply = await gw.chat(model="default", messages=[{"role": "user", "content": "hi"}])
        async for chunk in gw.stream(model="default", messages=[...]):
            print(chunk.text, end="")

The pipeline is composed once from config (and again, atomically, on reload); nothing is built
per request.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from headway.clock import Clock
from headway.config.runtime import RuntimeConfig
from headway.context import Call, Principal
from headway.errors import InvalidRequest, ModelNotFound
from headway.pipeline import ChatHandler, Stage, StreamHandler, compose
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

#: Feature stages, outermost first. Each entry is "module:factory"; a factory takes
#: (RuntimeConfig, Services) and returns a Stage, or None when its feature is off.
STAGE_FACTORIES: tuple[str, ...] = (
    "headway.observe.stage:build",
    "headway.limits.stage:build",
    "headway.cache.stage:build",
    "headway.degrade.stage:build",
)

#: The innermost handler: "module:factory" taking (RuntimeConfig, providers, Services).
TERMINAL_FACTORY = "headway.routing.terminal:build"

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


class Gateway:
    def __init__(
        self,
        config: RuntimeConfig | str | Path | None = None,
        *,
        clock: Clock | None = None,
        services: Services | None = None,
        providers: Mapping[str, Provider] | None = None,
    ) -> None:
        """`config`: a loaded RuntimeConfig, a path to a YAML file, or None for the embedded
        default. `providers` overrides deployments by name (tests, custom providers)."""
        if not isinstance(config, RuntimeConfig):
            from headway.config.load import load

            config = load(config)
        self._services = services or Services()
        if clock is not None:
            self._services.clock = clock
        self._overrides = dict(providers or {})
        self._pipeline = self._build(config)
        self._closed = False

    # ---- assembly ---------------------------------------------------------------------------

    def _build(self, runtime: RuntimeConfig) -> _Pipeline:
        from headway.providers.registry import build_provider

        providers: dict[str, Provider] = {}
        for name, dep in runtime.deployments.items():
            providers[name] = self._overrides.get(name) or build_provider(dep, self._services)
        stages: list[Stage] = []
        for target in STAGE_FACTORIES:
            factory: StageFactory | None = _import(target)
            if factory is not None and (stage := factory(runtime, self._services)) is not None:
                stages.append(stage)
        terminal_factory = _import(TERMINAL_FACTORY)
        if terminal_factory is not None:
            terminal = terminal_factory(runtime, providers, self._services)
        else:
            from headway.routing.dispatch import Dispatcher

            terminal = Dispatcher(runtime, providers, self._services.clock)
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
        old = self._pipeline
        self._pipeline = self._build(config)
        for name, provider in old.providers.items():
            if self._pipeline.providers.get(name) is not provider:
                await provider.aclose()

    # ---- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Gateway:
        return self

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
            from headway.wire.openai.ingress import parse_chat_request

            body = dict(kwargs)
            body["stream"] = stream
            request = parse_chat_request(body)
        elif request.stream != stream:
            request = replace(request, stream=stream)
        return Call(
            request=request,
            principal=principal if isinstance(principal, Principal) else Principal(),
            started=self._services.clock.monotonic(),
        )

    async def chat(
        self, request: ChatRequest | None = None, /, *, call: Call | None = None, **kwargs: Any
    ) -> ChatResponse:
        """Answer a chat call. Pass a ChatRequest, a prepared Call, or OpenAI-style keyword
        arguments (`model=`, `messages=[{"role": ..., "content": ...}]`, `max_tokens=` ...)."""
        return await self._pipeline.chat(self._call(request, call, kwargs, stream=False))

    async def stream(
        self, request: ChatRequest | None = None, /, *, call: Call | None = None, **kwargs: Any
    ) -> AsyncIterator[ChatChunk]:
        """Stream a chat call as neutral chunks; the last carries the finish reason and usage."""
        async for chunk in self._pipeline.stream(self._call(request, call, kwargs, stream=True)):
            yield chunk

    async def embed(
        self,
        request: EmbedRequest | None = None,
        /,
        *,
        model: str | None = None,
        input: str | list[str] | None = None,
        request_id: str = "",
    ) -> EmbedResponse:
        if request is None:
            if model is None or input is None:
                raise InvalidRequest("embed needs `model` and `input`")
            inputs = (input,) if isinstance(input, str) else tuple(input)
            request = EmbedRequest(model=model, inputs=inputs)
        runtime = self._pipeline.runtime
        dep = runtime.deployments.get(request.model)
        if dep is None or not dep.model.embeddings:
            names = [n for n, d in runtime.deployments.items() if d.model.embeddings]
            raise ModelNotFound(
                f"The embedding model `{request.model}` does not exist. Available: {', '.join(names)}",
                param="model",
            )
        provider = self._pipeline.providers[request.model]
        return await provider.embed(request, AttemptContext(request_id=request_id))

    def models(self) -> list[ModelInfo]:
        runtime = self._pipeline.runtime
        out = [ModelInfo(id=name, owned_by="headway") for name in runtime.routes]
        for name, dep in runtime.deployments.items():
            sunset = dep.model.sunset.isoformat() if dep.model.sunset else None
            out.append(ModelInfo(id=name, owned_by=dep.provider_name, sunset=sunset))
        return out
