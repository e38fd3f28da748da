"""The two ingress clients of the acceptance matrix (official SDKs) and the upstream configs.

Each `Client` answers the same questions whatever its wire format (text and finish of a plain
call, of a streamed call, a tool call plain and streamed, the reply to a tool result), so the
matrix test states every scenario once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anthropic
import openai
from anthropic.types import MessageParam, ToolParam
from openai.types.chat import (
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolParam,
)

from headway.providers.fake import RunningFake

KEY = "upstream-key"
TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


@dataclass(frozen=True)
class Upstream:
    """One upstream kind: which fake serves it and how the gateway's config names it."""

    kind: str
    flavour: str
    model: str

    def provider_yaml(self, fake: RunningFake) -> str:
        if self.kind == "azure":
            return f"{{kind: azure, base_url: '{fake.root_url}', api_key: {KEY}, api_version: '2024-10-21'}}"
        base = fake.url if self.flavour == "openai" else fake.root_url
        return f"{{kind: {self.kind}, base_url: '{base}', api_key: {KEY}}}"

    def config(self, fake: RunningFake, tmp_path: Path) -> str:
        return f"""
providers:
  up: {self.provider_yaml(fake)}
models:
  dep: {{provider: up, model: {self.model}}}
routes:
  chat:
    chain: [dep]
    retry: {{max_attempts: 1}}
    recovery: {{enabled: false}}
    breaker: {{enabled: false}}
ledger: {{sqlite_path: '{tmp_path / "headway.db"}'}}
"""


UPSTREAMS = (
    Upstream("openai", "openai", "gpt-4o-mini"),
    Upstream("azure", "azure", "gpt-4o-mini"),
    Upstream("anthropic", "anthropic", "claude-sonnet-4-6"),
    Upstream("gemini", "gemini", "gemini-2.5-flash"),
    Upstream("openai-compatible", "openai", "llama3.2"),
)


@dataclass(frozen=True)
class Reply:
    text: str
    finish: str  # normalised: stop | length | tool_calls | content_filter
    output_tokens: int
    headers: dict[str, str]


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    arguments: dict[str, Any]


class Client(Protocol):
    name: str

    @property
    def rate_limit_error(self) -> type[Exception]: ...

    @property
    def server_error(self) -> type[Exception]: ...

    async def chat(self, prompt: str) -> Reply: ...

    async def stream(self, prompt: str) -> Reply: ...

    async def tool_call(self, prompt: str, *, stream: bool) -> Call: ...

    async def tool_reply(self, prompt: str, call: Call, result: str) -> Reply: ...

    async def aclose(self) -> None: ...


_OPENAI_TOOLS: list[ChatCompletionToolParam] = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather", "parameters": TOOL_SCHEMA},
    }
]
_ANTHROPIC_TOOLS: list[ToolParam] = [
    {"name": "get_weather", "description": "Weather", "input_schema": TOOL_SCHEMA}
]
_ANTHROPIC_STOP = {
    "end_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class OpenAIClient:
    name = "openai"
    rate_limit_error = openai.RateLimitError
    server_error = openai.InternalServerError

    def __init__(self, base: str) -> None:
        self.c = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="caller", max_retries=0)

    async def chat(self, prompt: str) -> Reply:
        raw = await self.c.chat.completions.with_raw_response.create(
            model="chat", max_tokens=200, messages=[{"role": "user", "content": prompt}]
        )
        r = raw.parse()
        usage = r.usage
        assert usage is not None
        choice = r.choices[0]
        return Reply(
            choice.message.content or "",
            choice.finish_reason,
            usage.completion_tokens,
            dict(raw.headers),
        )

    async def stream(self, prompt: str) -> Reply:
        stream = await self.c.chat.completions.create(
            model="chat",
            max_tokens=200,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, finish, out = "", "", -1
        async for chunk in stream:
            if chunk.usage is not None:
                out = chunk.usage.completion_tokens
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
        return Reply(text, finish, out, {})

    async def tool_call(self, prompt: str, *, stream: bool) -> Call:
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": prompt}]
        if not stream:
            r = await self.c.chat.completions.create(
                model="chat",
                max_tokens=200,
                messages=messages,
                tools=_OPENAI_TOOLS,
                tool_choice="required",
            )
            assert r.choices[0].finish_reason == "tool_calls"
            calls = r.choices[0].message.tool_calls or []
            assert len(calls) == 1
            tc = calls[0]
            assert isinstance(tc, ChatCompletionMessageFunctionToolCall)
            return Call(tc.id, tc.function.name, json.loads(tc.function.arguments))
        chunks = await self.c.chat.completions.create(
            model="chat",
            max_tokens=200,
            messages=messages,
            tools=_OPENAI_TOOLS,
            tool_choice="required",
            stream=True,
        )
        parts: dict[int, dict[str, str]] = {}
        finish = None
        async for chunk in chunks:
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for d in choice.delta.tool_calls or ():
                    entry = parts.setdefault(d.index, {"id": "", "name": "", "args": ""})
                    entry["id"] += d.id or ""
                    if d.function is not None:
                        entry["name"] += d.function.name or ""
                        entry["args"] += d.function.arguments or ""
        assert finish == "tool_calls" and len(parts) == 1
        entry = parts[0]
        return Call(entry["id"], entry["name"], json.loads(entry["args"]))

    async def tool_reply(self, prompt: str, call: Call, result: str) -> Reply:
        messages: list[ChatCompletionMessageParam] = [
            {"role": "user", "content": prompt},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": result},
        ]
        r = await self.c.chat.completions.create(
            model="chat", max_tokens=200, messages=messages, tools=_OPENAI_TOOLS
        )
        assert r.usage is not None
        return Reply(
            r.choices[0].message.content or "",
            r.choices[0].finish_reason,
            r.usage.completion_tokens,
            {},
        )

    async def aclose(self) -> None:
        await self.c.close()


class AnthropicClient:
    name = "anthropic"
    rate_limit_error = anthropic.RateLimitError
    server_error = anthropic.InternalServerError

    def __init__(self, base: str) -> None:
        self.c = anthropic.AsyncAnthropic(base_url=base, api_key="caller", max_retries=0)

    async def chat(self, prompt: str) -> Reply:
        raw = await self.c.messages.with_raw_response.create(
            model="chat", max_tokens=200, messages=[{"role": "user", "content": prompt}]
        )
        m = await raw.parse()
        text = "".join(b.text for b in m.content if b.type == "text")
        return Reply(
            text, _ANTHROPIC_STOP[m.stop_reason or ""], m.usage.output_tokens, dict(raw.headers)
        )

    async def stream(self, prompt: str) -> Reply:
        async with self.c.messages.stream(
            model="chat", max_tokens=200, messages=[{"role": "user", "content": prompt}]
        ) as s:
            text = "".join([t async for t in s.text_stream])
            m = await s.get_final_message()
        assert text == "".join(b.text for b in m.content if b.type == "text")
        return Reply(text, _ANTHROPIC_STOP[m.stop_reason or ""], m.usage.output_tokens, {})

    async def tool_call(self, prompt: str, *, stream: bool) -> Call:
        kwargs: dict[str, Any] = {
            "model": "chat",
            "max_tokens": 200,
            "messages": [{"role": "user", "content": prompt}],
            "tools": _ANTHROPIC_TOOLS,
            "tool_choice": {"type": "any"},
        }
        if stream:
            async with self.c.messages.stream(**kwargs) as s:
                m = await s.get_final_message()
        else:
            m = await self.c.messages.create(**kwargs)
        assert m.stop_reason == "tool_use"
        (block,) = [b for b in m.content if b.type == "tool_use"]
        assert isinstance(block.input, dict)
        return Call(block.id, block.name, block.input)

    async def tool_reply(self, prompt: str, call: Call, result: str) -> Reply:
        messages: list[MessageParam] = [
            {"role": "user", "content": prompt},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": result}],
            },
        ]
        m = await self.c.messages.create(
            model="chat", max_tokens=200, messages=messages, tools=_ANTHROPIC_TOOLS
        )
        text = "".join(b.text for b in m.content if b.type == "text")
        return Reply(text, _ANTHROPIC_STOP[m.stop_reason or ""], m.usage.output_tokens, {})

    async def aclose(self) -> None:
        await self.c.close()


def client_for(ingress: str, base: str) -> Client:
    return OpenAIClient(base) if ingress == "openai" else AnthropicClient(base)
