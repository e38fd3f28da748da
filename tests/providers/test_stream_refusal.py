"""A refusal streamed by an OpenAI upstream (`delta.refusal`: structured output the model
declined) reaches the caller as a refusal: through headway's own server to the official `openai`
SDK, into the exact cache (a cached answer replays it, streamed or not), and to an Anthropic-wire
caller as text, the way a non-streamed refusal already went."""

from __future__ import annotations

from pathlib import Path

import anthropic
import openai

from headway.config.load import load
from headway.gateway import Gateway
from tests.providers.openai_server import DONE, Reply, ScriptedServer, chunk, usage_chunk
from tests.server.helpers import running

REFUSAL = "I'm sorry, I can't help with that."


def refusal_stream() -> list[bytes]:
    return [
        chunk({"role": "assistant", "content": None, "refusal": ""}),
        chunk({"refusal": "I'm sorry, "}),
        chunk({"refusal": "I can't help with that."}),
        chunk({}, "stop"),
        usage_chunk(9, 10),
        DONE,
    ]


def gateway(upstream: ScriptedServer) -> Gateway:
    text = f"""
providers:
  up: {{kind: openai, base_url: "{upstream.url}/v1", api_key: x}}
models:
  gpt: {{provider: up, model: gpt-4o-mini}}
routes:
  default: {{chain: [gpt]}}
cache: {{enabled: true, semantic: {{enabled: false}}}}
ledger: {{enabled: false}}
"""
    return Gateway(load(text=text, env={}))


ASK: list[openai.types.chat.ChatCompletionMessageParam] = [
    {"role": "user", "content": "Fill in the form."}
]


async def test_a_streamed_refusal_reaches_the_caller_and_the_cache(
    upstream: ScriptedServer, tmp_path: Path
) -> None:
    upstream.script(Reply(frames=refusal_stream()))
    async with (
        running(gateway(upstream)) as base,
        openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0) as client,
    ):
        stream = await client.chat.completions.create(
            model="gpt", messages=ASK, stream=True, temperature=0
        )
        chunks = [c async for c in stream]
        deltas = [c.choices[0].delta for c in chunks if c.choices]
        assert "".join(d.refusal or "" for d in deltas) == REFUSAL
        assert "".join(d.content or "" for d in deltas) == ""
        assert chunks[-1].choices[0].finish_reason == "stop"
        # the same question again is answered from the cache, as a refusal both ways
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt", messages=ASK, temperature=0
        )
        assert raw.headers["x-headway-cache"] == "exact"
        message = raw.parse().choices[0].message
        assert message.refusal == REFUSAL and message.content is None
        again = await client.chat.completions.create(
            model="gpt", messages=ASK, stream=True, temperature=0
        )
        replayed = [c.choices[0].delta.refusal or "" async for c in again if c.choices]
        assert "".join(replayed) == REFUSAL
    assert len(upstream.seen) == 1


async def test_an_anthropic_caller_reads_a_streamed_refusal_as_text(
    upstream: ScriptedServer,
) -> None:
    upstream.script(Reply(frames=refusal_stream()))
    async with (
        running(gateway(upstream)) as base,
        anthropic.AsyncAnthropic(base_url=base, api_key="x", max_retries=0) as client,
        client.messages.stream(
            model="gpt", max_tokens=100, messages=[{"role": "user", "content": "Fill it in."}]
        ) as stream,
    ):
        message = await stream.get_final_message()
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == REFUSAL  # type: ignore[union-attr]
