"""Acceptance matrix: every ingress (OpenAI SDK, Anthropic SDK) against every upstream kind
(OpenAI, Azure OpenAI, Anthropic, Gemini, OpenAI-compatible), for a plain chat, a stream, a
tool-call round trip (plain and streamed), an upstream 429 and an upstream 500.

Everything is real HTTP on loopback: SDK -> headway server (native HTTP) -> provider adapter ->
fake provider server of that vendor (zero latency). Errors must reach the caller in the
caller's own wire format, whatever the upstream's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from headway.config.load import load
from headway.gateway import Gateway
from headway.providers.fake import RunningFake, running_fake
from tests.providers.matrix_support import KEY, UPSTREAMS, Client, Upstream, client_for
from tests.server.helpers import running

INGRESS = ("openai", "anthropic")
PAIRS = [(ingress, upstream) for ingress in INGRESS for upstream in UPSTREAMS]
WEATHER_PROMPT = "What is the weather in Paris? Use get_weather."


@dataclass
class Rig:
    ingress: str
    upstream: Upstream
    fake: RunningFake
    client: Client


# One fake + gateway + server per (ingress, upstream) pair, shared by that pair's scenarios;
# the fake is reset before each scenario.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=PAIRS, ids=[f"{i}-to-{u.kind}" for i, u in PAIRS]
)
async def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Rig]:
    ingress, upstream = request.param
    tmp_path = tmp_path_factory.mktemp("matrix")
    async with (
        running_fake(upstream.flavour, api_key=KEY) as fake,
        Gateway(load(text=upstream.config(fake, tmp_path), env={})) as gateway,
        running(gateway) as base,
    ):
        client = client_for(ingress, base)
        try:
            yield Rig(ingress, upstream, fake, client)
        finally:
            await client.aclose()


@pytest_asyncio.fixture(loop_scope="module")
async def rig(pair: Rig) -> Rig:
    await pair.fake.reset()
    return pair


async def test_plain_chat(rig: Rig) -> None:
    reply = await rig.client.chat("Say hello. sim:tokens=5")
    assert reply.text.strip()
    assert reply.finish == "stop"
    assert reply.output_tokens == 5  # the upstream's exact usage, mapped through both formats
    assert reply.headers["x-headway-deployment"] == "dep"
    assert reply.headers["x-headway-route"] == "chat"
    stats = await rig.fake.stats()
    assert (stats["non_streamed"], stats["streamed"]) == (1, 0)


async def test_streaming(rig: Rig) -> None:
    streamed = await rig.client.stream("Say hello. sim:tokens=8")
    plain = await rig.client.chat("Say hello. sim:tokens=8")
    assert streamed.text == plain.text and streamed.text.strip()
    assert streamed.finish == "stop"
    assert streamed.output_tokens == 8
    stats = await rig.fake.stats()
    assert (stats["streamed"], stats["non_streamed"]) == (1, 1)  # streamed upstream too


async def test_tool_call_round_trip(rig: Rig) -> None:
    call = await rig.client.tool_call(WEATHER_PROMPT, stream=False)
    assert call.id and call.name == "get_weather"
    assert isinstance(call.arguments.get("city"), str)
    streamed = await rig.client.tool_call(WEATHER_PROMPT, stream=True)
    assert (streamed.name, streamed.arguments) == (call.name, call.arguments)
    reply = await rig.client.tool_reply(WEATHER_PROMPT, call, '{"temp_c": 18}')
    assert reply.text.strip()
    assert reply.finish == "stop"


async def test_upstream_429(rig: Rig) -> None:
    await rig.fake.control(error_rate=1.0, error_status=429, error_retry_after_s=2)
    with pytest.raises(rig.client.rate_limit_error) as info:
        await rig.client.chat("hello")
    err = info.value
    assert getattr(err, "status_code", None) == 429
    assert err.response.headers["retry-after"] == "2"  # type: ignore[attr-defined]
    stats = await rig.fake.stats()
    assert stats["by_status"] == {"429": 1}  # no hidden retries upstream


async def test_upstream_500(rig: Rig) -> None:
    await rig.fake.control(error_rate=1.0, error_status=500)
    with pytest.raises(rig.client.server_error) as info:
        await rig.client.chat("hello")
    err = info.value
    status = getattr(err, "status_code", 0)
    assert 500 <= status < 600
    body = getattr(err, "body", None)
    assert isinstance(body, dict)
    if rig.ingress == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == "api_error"
    else:
        assert body["type"] == "server_error"  # the OpenAI SDK unwraps `error`
