"""The innermost handler: resolve the requested model to a route and send the call to it.

A requested name is a route alias (an ordered chain of deployments) or a single deployment. This is
the foundation's plain chain: try each deployment in order, fall over on fallback-eligible errors,
and for streams only before the first chunk has been handed out. Breakers, retries, deadlines,
hedging and mid-stream recovery wrap this in headway.routing (resilience).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from headway.clock import Clock
from headway.config.runtime import Route, RuntimeConfig
from headway.context import Call
from headway.errors import AllAttemptsFailed, Attempt, HeadwayError, ModelNotFound, PermissionDenied
from headway.providers.base import AttemptContext, Provider
from headway.types import ChatChunk, ChatResponse


class Dispatcher:
    def __init__(self, runtime: RuntimeConfig, providers: Mapping[str, Provider], clock: Clock):
        self._runtime = runtime
        self._providers = providers
        self._clock = clock
        self._targets: dict[str, tuple[str | None, tuple[Provider, ...], Route | None]] = {}
        for name, route in runtime.routes.items():
            members = tuple(providers[m] for m in route.chain)
            self._targets[name] = (name, members, route)
        for name in runtime.deployments:
            if name in providers:
                self._targets[name] = (None, (providers[name],), None)

    def resolve(self, call: Call) -> tuple[str | None, tuple[Provider, ...], Route | None]:
        model = call.request.model
        target = self._targets.get(model)
        if target is None:
            raise ModelNotFound(
                f"The model `{model}` does not exist. Available: {', '.join(self._runtime.public_models)}",
                param="model",
            )
        allowed = call.principal.allowed_models
        if allowed is not None and model not in allowed:
            raise PermissionDenied(f"this key may not use model `{model}`", param="model")
        return target

    def _ctx(self, call: Call, route: Route | None) -> AttemptContext:
        deadline = call.deadline
        if deadline is None and route is not None:
            deadline = self._clock.monotonic() + route.policy.timeout_s
        return AttemptContext(request_id=call.request_id, deadline=deadline)

    async def chat(self, call: Call) -> ChatResponse:
        route_name, members, route = self.resolve(call)
        call.served.route = route_name
        attempts: list[Attempt] = []
        last: HeadwayError | None = None
        for depth, provider in enumerate(members):
            call.served.attempts += 1
            try:
                response = await provider.chat(call.request, self._ctx(call, route))
            except HeadwayError as exc:
                if not exc.fallback_eligible or len(members) == 1:
                    raise
                attempts.append(Attempt(provider.name, str(exc), exc.upstream_status))
                last = exc
                continue
            call.served.deployment = provider.name
            call.served.fallback_depth = depth
            call.served.usage = response.usage
            return response
        raise AllAttemptsFailed(attempts, status=last.status if last else 502)

    async def stream(self, call: Call) -> AsyncIterator[ChatChunk]:
        route_name, members, route = self.resolve(call)
        call.served.route = route_name
        attempts: list[Attempt] = []
        last: HeadwayError | None = None
        for depth, provider in enumerate(members):
            call.served.attempts += 1
            started = False
            try:
                async for chunk in provider.stream(call.request, self._ctx(call, route)):
                    if not started:
                        started = True
                        call.served.deployment = provider.name
                        call.served.fallback_depth = depth
                    if chunk.usage is not None:
                        call.served.usage = chunk.usage
                    yield chunk
                return
            except HeadwayError as exc:
                if started or not exc.fallback_eligible or len(members) == 1:
                    raise
                attempts.append(Attempt(provider.name, str(exc), exc.upstream_status))
                last = exc
        raise AllAttemptsFailed(attempts, status=last.status if last else 502)
