"""Chaos tests run the real thing: fake provider servers (headway.providers.fake) on loopback,
real HTTP providers, the gateway and, for wire-format tests, the headway server with the official
SDKs as clients. Faults are injected through the fakes' `/_fake/control`.

Time is real here (sockets do not run on a fake clock), so durations are scaled down and each test
states its scaling; bounds are asserted against figures measured in the same run (the
secondary's own latency), never against absolute speeds.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from headway.config.load import load
from headway.gateway import Gateway
from headway.observe.events import Event
from headway.providers.fake import RunningFake, running_fake

MODEL = "gpt-4o-mini"
#: the sim answers with exactly this many tokens when the prompt says so
PROMPT = "Tell me about the sea. sim:tokens=60"
MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": PROMPT}]


@asynccontextmanager
async def fakes(n: int = 2, flavour: str = "openai") -> AsyncIterator[list[RunningFake]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running_fake(flavour)) for _ in range(n)]


def config(
    tmp_path: Path,
    upstreams: Sequence[RunningFake],
    route: dict[str, Any],
    *,
    kind: str = "openai",
    model: str = MODEL,
    names: Sequence[str] = ("primary", "secondary", "tertiary"),
) -> str:
    """A config with one provider per fake and one deployment on each, all serving the same
    upstream model (so a restart on another deployment says the same thing, as the same model
    at two providers or regions does), and route `r` over them in order."""
    providers: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for name, fake in zip(names, upstreams, strict=False):
        url = fake.url if kind == "openai" else fake.root_url
        providers[f"p_{name}"] = {"kind": kind, "base_url": url, "api_key": "x"}
        models[name] = {"provider": f"p_{name}", "model": model}
    chain = list(models)
    doc = {
        "providers": providers,
        "models": models,
        "routes": {"r": {"chain": chain, **route}},
        "ledger": {"sqlite_path": str(tmp_path / "headway.db")},
    }
    return json.dumps(doc)  # JSON is YAML


def gateway(
    tmp_path: Path, upstreams: Sequence[RunningFake], route: dict[str, Any], **kw: Any
) -> Gateway:
    return Gateway(load(text=config(tmp_path, upstreams, route, **kw), env={}))


class Events:
    def __init__(self, gw: Gateway) -> None:
        self.seen: list[Event] = []
        gw.services.events.subscribe(None, self.seen.append)

    def kinds(self, prefix: str) -> list[str]:
        return [e.kind for e in self.seen if e.kind.startswith(prefix)]


async def requests_at(fake: RunningFake) -> int:
    stats = await fake.stats()
    return int(stats["requests"])


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.took = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.took = time.perf_counter() - self.start


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(0.99 * len(ordered) + 0.999999) - 1))]
