"""A multi-turn tool conversation with a newer Gemini model, which signs its function calls and
refuses a later turn that drops the signature (providers.md 5.2), through headway's server with
the official SDKs: the signature reaches the caller inside the tool-call id and comes back."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from headway.config.load import load
from headway.gateway import Gateway
from headway.providers.fake import running_fake
from headway.wire.gemini.signature import SEPARATOR, split
from tests.providers.matrix_support import KEY, Upstream, client_for
from tests.server.helpers import running

NEWER = Upstream("gemini", "gemini", "gemini-3-flash")
PROMPT = "What is the weather in Paris? Use get_weather."


@pytest.fixture
async def base(tmp_path: Path) -> AsyncIterator[str]:
    async with (
        running_fake(NEWER.flavour, api_key=KEY) as fake,
        Gateway(load(text=NEWER.config(fake, tmp_path), env={})) as gateway,
        running(gateway) as url,
    ):
        yield url


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("ingress", ["openai", "anthropic"])
async def test_second_turn_is_accepted(base: str, ingress: str, stream: bool) -> None:
    client = client_for(ingress, base)
    try:
        call = await client.tool_call(PROMPT, stream=stream)
        reply = await client.tool_reply(PROMPT, call, '{"temp_c": 18}')
    finally:
        await client.aclose()
    assert call.name == "get_weather" and isinstance(call.arguments.get("city"), str)
    assert split(call.id)[1] is not None  # the signature travels in the id
    assert re.fullmatch(r"[a-zA-Z0-9_-]+", call.id)  # Anthropic's tool_use id pattern
    assert reply.finish == "stop" and reply.text.strip()


async def test_a_dropped_signature_is_the_callers_400(base: str) -> None:
    client = client_for("openai", base)
    try:
        call = await client.tool_call(PROMPT, stream=False)
        bare = type(call)(call.id.partition(SEPARATOR)[0], call.name, call.arguments)
        with pytest.raises(openai.BadRequestError) as info:
            await client.tool_reply(PROMPT, bare, '{"temp_c": 18}')
    finally:
        await client.aclose()
    assert "thought_signature" in str(info.value)
