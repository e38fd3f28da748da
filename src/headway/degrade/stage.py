"""The degradation ladder: when a route's chain fails, answer less well rather than not at all.

Steps, in the route's configured order, each flagged in `call.served.degraded` (the
`x-headway-degraded` header) and as a `degrade.<step>` event:

- `stale_cache`: an expired answer the cache still holds, with its age (`age` header);
- `substitute`: the same call on a smaller model (`substitute:<model>`);
- `static`: a fixed answer matched on the normalised prompt;
- `queue`: for non-real-time calls only (`x-headway-priority: batch`, not streamed), a 202 with a
  job id (`JobQueued`); the job is retried with backoff until its deadline.

Only upstream failures start the ladder (the chain failed, a deadline passed, headway's shared
state is down); a caller's error or a spent limit is answered as is. A stream degrades only before
its first chunk: after that, the chain's own mid-stream recovery has already done what it can.
The cache is reached through a small protocol, so the ladder works with the cache off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from headway.config.runtime import RuntimeConfig
from headway.context import Call
from headway.degrade.config import LadderConfig, Step
from headway.degrade.static import StaticAnswers, load_static
from headway.degrade.worker import JOB_HEADER, Jobs, build_queue
from headway.errors import ConfigError, HeadwayError, JobQueued, Unavailable, UpstreamError
from headway.observe.events import EventBus
from headway.pipeline import ChatHandler, StreamHandler, aclose
from headway.services import Services
from headway.types import ChatChunk, ChatResponse, FinishReason, ToolCallDelta, Usage

EXTRA = "degrade"
JOBS_EXTRA = "jobs"


class StaleSource(Protocol):
    """What the ladder needs from the cache (headway.cache.stage.CacheStage implements it)."""

    async def lookup_stale(self, call: Call) -> tuple[ChatResponse, float] | None: ...


def starts_ladder(exc: HeadwayError) -> bool:
    return isinstance(exc, UpstreamError | Unavailable)


@dataclass(slots=True, frozen=True)
class Ladder:
    steps: tuple[Step, ...]
    substitute: str | None
    static: StaticAnswers
    stale_max_age_s: float | None


def as_chunks(response: ChatResponse) -> Iterator[ChatChunk]:
    """A whole answer as a stream: role, text, tool calls, then the finish with usage."""
    rid, model, created = response.id, response.model, response.created
    yield ChatChunk(id=rid, model=model, role="assistant", created=created)
    if response.content:
        yield ChatChunk(id=rid, model=model, text=response.content, created=created)
    for i, tc in enumerate(response.tool_calls):
        delta = ToolCallDelta(i, tc.id, tc.name, tc.arguments)
        yield ChatChunk(id=rid, model=model, tool_calls=(delta,), created=created)
    yield ChatChunk(
        id=rid,
        model=model,
        finish_reason=response.finish_reason,
        usage=response.usage,
        created=created,
    )


class DegradeStage:
    name = "degrade"

    def __init__(
        self,
        ladders: Mapping[str, Ladder],
        default: Ladder | None,
        services: Services,
        jobs: Jobs | None,
    ) -> None:
        self._ladders = dict(ladders)
        self._default = default
        self._services = services
        self._events: EventBus = services.events
        self.jobs = jobs

    def ladder(self, call: Call) -> Ladder | None:
        return self._ladders.get(call.request.model, self._default)

    def _flag(self, call: Call, step: str, exc: HeadwayError, **data: Any) -> None:
        call.served.degraded.append(step)
        self._events.emit(
            f"degrade.{step.split(':', 1)[0]}",
            route=call.request.model,
            error=exc.message,
            **data,
        )

    # ---- steps ------------------------------------------------------------------------------

    async def _stale(self, call: Call, ladder: Ladder, exc: HeadwayError) -> ChatResponse | None:
        cache = self._services.extras.get("cache")
        if (
            cache is None
            or not hasattr(cache, "lookup_stale")
            or call.cache_directive == "no-store"
        ):
            return None
        source: StaleSource = cache
        found = await source.lookup_stale(call)
        if found is None:
            return None
        response, age = found
        if ladder.stale_max_age_s is not None and age > ladder.stale_max_age_s:
            return None
        call.served.cache = "stale"
        call.served.cache_age_s = age
        call.served.headers["age"] = str(int(age))
        self._flag(call, "stale_cache", exc, age_s=age)
        return response

    def _substitute_call(self, call: Call, model: str) -> Call:
        # The operator chose the substitute for this route; the caller's model allow-list names
        # the route, so it does not apply to the substitute.
        principal = replace(call.principal, allowed_models=None)
        return replace(call, request=replace(call.request, model=model), principal=principal)

    def _static(self, call: Call, ladder: Ladder, exc: HeadwayError) -> ChatResponse | None:
        answer = ladder.static.match(call.request) if ladder.static else None
        if answer is None:
            return None
        self._flag(call, "static", exc)
        return ChatResponse(
            id=f"static-{call.request_id}",
            model=call.request.model,
            content=answer,
            finish_reason=FinishReason.STOP,
            usage=Usage(),
        )

    async def _queue(self, call: Call, exc: HeadwayError) -> None:
        if (
            self.jobs is None
            or call.priority != "batch"
            or call.request.stream
            or JOB_HEADER in call.headers
        ):
            return
        job = await self.jobs.submit(call)
        self._flag(call, "queued", exc, job=job.id)
        raise JobQueued(job.id, job=job)

    # ---- the ladder -------------------------------------------------------------------------

    async def _descend(
        self, call: Call, nxt: ChatHandler, ladder: Ladder, exc: HeadwayError
    ) -> ChatResponse:
        route = call.served.route
        for step in ladder.steps:
            if step == "stale_cache":
                out = await self._stale(call, ladder, exc)
            elif step == "substitute" and ladder.substitute:
                try:
                    out = await nxt(self._substitute_call(call, ladder.substitute))
                except HeadwayError as sub_exc:
                    if not starts_ladder(sub_exc):
                        raise
                    out = None
                else:
                    call.served.route = route
                    self._flag(call, f"substitute:{ladder.substitute}", exc)
            elif step == "static":
                out = self._static(call, ladder, exc)
            elif step == "queue":
                await self._queue(call, exc)
                out = None
            else:
                out = None
            if out is not None:
                return out
        raise exc

    async def chat(self, call: Call, nxt: ChatHandler) -> ChatResponse:
        try:
            return await nxt(call)
        except HeadwayError as exc:
            ladder = self.ladder(call)
            if ladder is None or not starts_ladder(exc):
                raise
            return await self._descend(call, nxt, ladder, exc)

    async def _descend_stream(
        self, call: Call, nxt: StreamHandler, ladder: Ladder, exc: HeadwayError
    ) -> AsyncIterator[ChatChunk]:
        route = call.served.route
        for step in ladder.steps:
            if step == "stale_cache":
                hit = await self._stale(call, ladder, exc)
                if hit is not None:
                    for chunk in as_chunks(hit):
                        yield chunk
                    return
            elif step == "substitute" and ladder.substitute:
                gen = nxt(self._substitute_call(call, ladder.substitute))
                try:
                    try:
                        first = await anext(gen)
                    except StopAsyncIteration:
                        return
                    except HeadwayError as sub_exc:
                        if not starts_ladder(sub_exc):
                            raise
                        continue
                    call.served.route = route
                    self._flag(call, f"substitute:{ladder.substitute}", exc)
                    yield first
                    async for chunk in gen:
                        yield chunk
                    return
                finally:
                    await aclose(gen)
            elif step == "static":
                answer = self._static(call, ladder, exc)
                if answer is not None:
                    for chunk in as_chunks(answer):
                        yield chunk
                    return
        raise exc

    async def stream(self, call: Call, nxt: StreamHandler) -> AsyncIterator[ChatChunk]:
        gen = nxt(call)
        try:
            try:
                first = await anext(gen)
            except StopAsyncIteration:
                return
            except HeadwayError as exc:
                ladder = self.ladder(call)
                if ladder is None or not starts_ladder(exc):
                    raise
                async for chunk in self._descend_stream(call, nxt, ladder, exc):
                    yield chunk
                return
            yield first
            async for chunk in gen:
                yield chunk
        finally:
            await aclose(gen)

    async def aclose(self) -> None:
        return None  # the job queue is shared across reloads and closed with the services


def _ladder(cfg: LadderConfig, path: str, runtime: RuntimeConfig, base: Path | None) -> Ladder:
    if cfg.substitute is not None and cfg.substitute not in runtime.public_models:
        raise ConfigError(f"{path}.substitute", f"unknown model or route {cfg.substitute!r}")
    static = load_static(
        cfg.static_file, cfg.static_answers, cfg.static_default, path=path, base=base
    )
    return Ladder(tuple(cfg.steps), cfg.substitute, static, cfg.stale_max_age_s)


def _jobs(runtime: RuntimeConfig, services: Services) -> Jobs:
    cfg = runtime.file.degrade.queue
    old = services.extras.get(JOBS_EXTRA)
    if isinstance(old, Jobs) and old.cfg == cfg:
        return old
    jobs = Jobs(build_queue(cfg), cfg, services.clock, services.events)
    if isinstance(old, Jobs):
        jobs.take_over(old)  # a reload changed the queue: carry the worker over
    services.extras[JOBS_EXTRA] = jobs
    return jobs


def build(runtime: RuntimeConfig, services: Services) -> DegradeStage | None:
    cfg = runtime.file.degrade
    if not cfg.enabled:
        services.extras.pop(EXTRA, None)
        return None
    base = Path(runtime.source).parent if not runtime.source.startswith("<") else None
    ladders: dict[str, Ladder] = {}
    for name, ladder_cfg in cfg.routes.items():
        if name not in runtime.public_models:
            raise ConfigError(f"degrade.routes.{name}", f"unknown route or model {name!r}")
        ladders[name] = _ladder(ladder_cfg, f"degrade.routes.{name}", runtime, base)
    default = _ladder(cfg.default, "degrade.default", runtime, base) if cfg.default else None
    uses_queue = any("queue" in lc.steps for lc in cfg.routes.values()) or (
        cfg.default is not None and "queue" in cfg.default.steps
    )
    jobs = _jobs(runtime, services) if uses_queue else None
    stage = DegradeStage(ladders, default, services, jobs)
    services.extras[EXTRA] = stage
    return stage
