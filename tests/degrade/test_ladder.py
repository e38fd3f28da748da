"""The degradation ladder: steps in order, each flagged; only upstream failures start it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from headway.config.load import load
from headway.config.runtime import RuntimeConfig
from headway.context import Call
from headway.degrade.stage import DegradeStage, build
from headway.errors import (
    AllAttemptsFailed,
    Attempt,
    ConfigError,
    ContentFiltered,
    HeadwayError,
    JobQueued,
    UpstreamError,
)
from headway.services import Services
from headway.types import ChatChunk, ChatRequest, ChatResponse, FinishReason, Message, Usage
from tests.routing.helpers import Recorder

BASE = """
providers: {p: {kind: sim}}
models:
  big: {provider: p, model: big}
  small: {provider: p, model: small}
routes:
  default: {chain: [big]}
"""

DOWN = AllAttemptsFailed([Attempt("big", "500")], status=502)


def runtime(degrade: str) -> RuntimeConfig:
    return load(text=BASE + degrade, env={})


class Inner:
    """The handler below the ladder: fails for `failing` models, answers for the rest."""

    def __init__(self, failing: dict[str, HeadwayError]) -> None:
        self.failing = failing
        self.models: list[str] = []

    async def chat(self, call: Call) -> ChatResponse:
        self.models.append(call.request.model)
        err = self.failing.get(call.request.model)
        if err is not None:
            raise err
        return ChatResponse("id", call.request.model, "fresh", FinishReason.STOP, Usage(3, 1))

    async def stream(self, call: Call) -> AsyncIterator[ChatChunk]:
        self.models.append(call.request.model)
        err = self.failing.get(call.request.model)
        if err is not None:
            raise err
        yield ChatChunk("id", call.request.model, text="fresh")
        yield ChatChunk("id", call.request.model, finish_reason=FinishReason.STOP)


class Cache:
    def __init__(self, age: float = 120.0) -> None:
        self.age = age
        self.asked = 0

    async def lookup_stale(self, call: Call) -> tuple[ChatResponse, float] | None:
        self.asked += 1
        return ChatResponse("old", "big", "stale answer", FinishReason.STOP, Usage()), self.age


def call(text: str = "What are your opening hours?", **kw: object) -> Call:
    return Call(ChatRequest(model="default", messages=(Message("user", text),)), **kw)  # type: ignore[arg-type]


def stage(degrade: str, services: Services | None = None) -> tuple[DegradeStage, Services]:
    services = services or Services()
    built = build(runtime(degrade), services)
    assert built is not None
    return built, services


LADDER = """
degrade:
  enabled: true
  routes:
    default:
      steps: [stale_cache, substitute, static]
      substitute: small
      static_answers: {"what are your opening hours": "9 to 5."}
"""


async def test_stale_cache_comes_first_with_its_age() -> None:
    services = Services()
    rec = Recorder(services.events)
    cache = Cache(age=120.0)
    services.extras["cache"] = cache
    ladder, _ = stage(LADDER, services)
    inner = Inner({"default": DOWN})
    c = call()
    reply = await ladder.chat(c, inner.chat)
    assert reply.content == "stale answer"
    assert c.served.degraded == ["stale_cache"]
    assert (c.served.cache, c.served.cache_age_s, c.served.headers["age"]) == (
        "stale",
        120.0,
        "120",
    )
    assert rec.kinds("degrade.") == ["degrade.stale_cache"]
    assert inner.models == ["default"]  # no substitute needed


async def test_substitute_when_there_is_no_stale_answer() -> None:
    ladder, services = stage(LADDER)
    rec = Recorder(services.events)
    inner = Inner({"default": DOWN})
    c = call()
    reply = await ladder.chat(c, inner.chat)
    assert reply.model == "small" and inner.models == ["default", "small"]
    assert c.served.degraded == ["substitute:small"]
    assert c.request.model == "default"  # the caller's call is unchanged
    assert rec.kinds("degrade.") == ["degrade.substitute"]


async def test_static_answer_matched_on_the_normalised_prompt() -> None:
    ladder, _ = stage(LADDER)
    inner = Inner({"default": DOWN, "small": UpstreamError("also down")})
    c = call("  WHAT are your   opening hours ")
    reply = await ladder.chat(c, inner.chat)
    assert reply.content == "9 to 5." and c.served.degraded == ["static"]
    with pytest.raises(AllAttemptsFailed):  # no match, no default: the original error
        await ladder.chat(call("something else"), inner.chat)


async def test_caller_errors_do_not_degrade() -> None:
    ladder, _ = stage(LADDER)
    inner = Inner({"default": ContentFiltered("blocked")})
    c = call()
    with pytest.raises(ContentFiltered):
        await ladder.chat(c, inner.chat)
    assert c.served.degraded == [] and inner.models == ["default"]


async def test_routes_without_a_ladder_do_not_degrade() -> None:
    ladder, _ = stage(LADDER.replace("    default:\n      steps", "    big:\n      steps"))
    with pytest.raises(AllAttemptsFailed):
        await ladder.chat(call(), Inner({"default": DOWN}).chat)


QUEUE = """
degrade:
  enabled: true
  default: {steps: [queue], static_default: unused}
  queue: {backend: memory}
"""


async def test_batch_calls_are_queued_with_a_job_id() -> None:
    ladder, services = stage(QUEUE)
    inner = Inner({"default": DOWN})
    c = call(priority="batch")
    with pytest.raises(JobQueued) as err:
        await ladder.chat(c, inner.chat)
    assert err.value.status == 202
    assert err.value.headers["location"] == f"/v1/jobs/{err.value.job_id}"
    assert c.served.degraded == ["queued"]
    jobs = services.extras["jobs"]
    job = await jobs.queue.get(err.value.job_id)
    assert job is not None and job.status == "queued" and job.model == "default"
    # an interactive call is not queued: it gets the error
    with pytest.raises(AllAttemptsFailed):
        await ladder.chat(call(), inner.chat)


async def test_streams_degrade_before_their_first_chunk() -> None:
    services = Services()
    services.extras["cache"] = Cache()
    ladder, _ = stage(LADDER, services)
    inner = Inner({"default": DOWN})
    c = call()
    chunks = [ch async for ch in ladder.stream(c, inner.stream)]
    assert "".join(ch.text for ch in chunks) == "stale answer"
    assert chunks[-1].finish_reason is FinishReason.STOP and c.served.degraded == ["stale_cache"]
    ladder2, _ = stage(LADDER)
    c2 = call()
    chunks = [ch async for ch in ladder2.stream(c2, inner.stream)]
    assert "".join(ch.text for ch in chunks) == "fresh" and c2.served.degraded == [
        "substitute:small"
    ]


async def test_a_healthy_stream_passes_through() -> None:
    ladder, _ = stage(LADDER)
    c = call()
    chunks = [ch async for ch in ladder.stream(c, Inner({}).stream)]
    assert [ch.text for ch in chunks] == ["fresh", ""] and c.served.degraded == []


def test_static_answers_from_a_file(tmp_path: Path) -> None:
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        "default: Please try again later.\n"
        "answers:\n"
        "  - prompts: [hi, hello]\n"
        "    answer: Hello!\n",
        encoding="utf-8",
    )
    cfg = tmp_path / "headway.yaml"
    cfg.write_text(
        BASE + "degrade:\n  enabled: true\n  routes:\n    default:\n"
        "      steps: [static]\n      static_file: answers.yaml\n",
        encoding="utf-8",
    )
    services = Services()
    built = build(load(cfg, env={}), services)
    assert built is not None
    ladder = built.ladder(call())
    assert ladder is not None
    assert ladder.static.match(call("Hello!").request) == "Hello!"
    assert ladder.static.match(call("other").request) == "Please try again later."


@pytest.mark.parametrize(
    ("degrade", "path"),
    [
        ("  routes: {nope: {steps: [static]}}\n", "degrade.routes.nope"),
        ("  routes: {default: {substitute: tiny}}\n", "degrade.routes.default.substitute"),
        (
            "  routes: {default: {static_file: /no/such/file}}\n",
            "degrade.routes.default.static_file",
        ),
        ("  routes: {default: {steps: [static, static]}}\n", "degrade.routes.default.steps"),
        ("  routes: {default: {steps: [pray]}}\n", "degrade.routes.default.steps[0]"),
    ],
)
def test_config_errors_name_their_path(degrade: str, path: str) -> None:
    with pytest.raises(ConfigError) as err:
        build(runtime("degrade:\n  enabled: true\n" + degrade), Services())
    assert err.value.path == path
