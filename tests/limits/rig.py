"""A limits stage composed over the FakeTerminal, from a YAML snippet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headway.clock import FakeClock
from headway.config.load import load
from headway.context import Call, Principal
from headway.limits.capacity import CapacityView
from headway.limits.stage import LimitsStage, build
from headway.observe.events import Event
from headway.pipeline import ChatHandler, Stage, StreamHandler, compose
from headway.services import Services
from headway.types import ChatRequest, Message
from tests.limits.fakes import FakeTerminal

BASE = """
providers:
  oa: {kind: openai, api_key: x}
models:
  a: {provider: oa, model: gpt-4o}
  b: {provider: oa, model: gpt-4o-mini}
routes:
  r: {chain: [a, b]}
"""


@dataclass
class Rig:
    stage: LimitsStage
    terminal: FakeTerminal
    services: Services
    chat: ChatHandler
    stream: StreamHandler
    events: list[Event]

    @property
    def capacity(self) -> CapacityView:
        cap = self.services.extras["limits.capacity"]
        assert isinstance(cap, CapacityView)
        return cap


def rig(
    yaml: str,
    clock: FakeClock,
    *,
    store: Any = None,
    inner: list[Stage] | None = None,
) -> Rig:
    runtime = load(text=BASE + yaml, env={})
    services = Services(clock=clock)
    if store is not None:
        services.extras["limits.store"] = store
    stage = build(runtime, services)
    assert isinstance(stage, LimitsStage)
    cap = services.extras["limits.capacity"]
    terminal = FakeTerminal(runtime, hooks=cap.hook)
    chat, stream = compose([stage, *(inner or [])], terminal)
    events: list[Event] = []
    services.events.subscribe(None, events.append)
    return Rig(stage, terminal, services, chat, stream, events)


def call(
    model: str = "r",
    text: str = "hello world",
    *,
    max_tokens: int | None = 100,
    principal: Principal | None = None,
    **kw: Any,
) -> Call:
    request = ChatRequest(model=model, messages=(Message("user", text),), max_tokens=max_tokens)
    return Call(request, principal=principal or Principal(key_id="k1", user="alice"), **kw)
