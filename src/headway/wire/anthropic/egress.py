"""The Anthropic Messages wire format (egress): neutral request -> `POST /v1/messages` body.

OpenAI-shaped conversations are mapped per providers.md 4.4 and 6.3:

- system and developer messages, wherever they are, are concatenated into the top-level `system`;
- assistant `tool_calls` become `tool_use` blocks (the JSON argument string parsed to an object);
- consecutive `tool` messages become `tool_result` blocks of ONE user message, and consecutive
  turns of the same role are merged (a user text after tool results joins that user message),
  because the API wants alternating turns;
- `max_tokens` is required by Anthropic: the deployment's default applies when the caller set none;
- temperature is clamped to Anthropic's 0..1 (OpenAI allows up to 2);
- data-URL images become base64 sources, http(s) URLs become url sources.

`AnthropicWire` is the `WireFormat` (providers/base.py); response and stream decoding live in
`decode.py`, error classification and rate-limit headers in `classify.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from headway.errors import HeadwayError, InvalidRequest
from headway.providers.base import HttpCall, RateLimitSnapshot
from headway.types import (
    ChatRequest,
    ChatResponse,
    ContentPart,
    EmbedRequest,
    EmbedResponse,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
)
from headway.wire.anthropic.classify import classify_error, ratelimit_snapshot
from headway.wire.anthropic.decode import AnthropicStreamDecoder, parse_message
from headway.wire.turns import fold_turns
from headway.wire.util import plain_call_id, split_data_url

API_VERSION = "2023-06-01"
MESSAGES_PATH = "/v1/messages"
DEFAULT_MAX_TOKENS = 4096

_TOOL_CHOICE: dict[str, dict[str, Any]] = {
    "auto": {"type": "auto"},
    "required": {"type": "any"},
    "none": {"type": "none"},
}


def image_block(part: ImagePart) -> dict[str, Any]:
    if part.media_type and part.data:
        media_type, data = part.media_type, part.data
    elif (split := split_data_url(part.url)) is not None:
        media_type, data = split
    else:
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _blocks(content: str | tuple[ContentPart, ...] | None) -> list[dict[str, Any]]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    out: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            if part.text:
                out.append({"type": "text", "text": part.text})
        else:
            out.append(image_block(part))
    return out


def _tool_result(message: Message) -> dict[str, Any]:
    content: str | list[dict[str, Any]]
    if message.content is None or isinstance(message.content, str):
        content = message.content or ""
    else:
        content = _blocks(message.content)
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": plain_call_id(message.tool_call_id or ""),
        "content": content,
    }
    if message.is_error:
        block["is_error"] = True
    return block


def _tool_use(call: ToolCall, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": plain_call_id(call.id), "name": call.name, "input": arguments}


def convert_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    return fold_turns(
        messages,
        items_key="content",
        assistant_role="assistant",
        content=_blocks,
        tool_result=lambda _, message: _tool_result(message),
        tool_call=_tool_use,
    )


def _tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice: dict[str, Any] | None
    if request.tool_choice is None:
        choice = None
    elif request.tool_choice in _TOOL_CHOICE:
        choice = dict(_TOOL_CHOICE[request.tool_choice])
    else:
        choice = {"type": "tool", "name": request.tool_choice}
    if request.parallel_tool_calls is False and request.tool_choice != "none":
        choice = choice or {"type": "auto"}
        choice["disable_parallel_tool_use"] = True
    return choice


def messages_body(
    request: ChatRequest, model: str, *, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> dict[str, Any]:
    if request.n != 1:
        raise InvalidRequest("anthropic models return one choice; n must be 1", param="n")
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens or default_max_tokens,
        "messages": convert_messages(request.messages),
    }
    system = request.system_text()
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = min(1.0, max(0.0, request.temperature))
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.tools:
        body["tools"] = [
            {
                "name": tool.name,
                **({"description": tool.description} if tool.description else {}),
                "input_schema": tool.parameters or {"type": "object", "properties": {}},
            }
            for tool in request.tools
        ]
    choice = _tool_choice(request)
    if choice is not None:
        body["tool_choice"] = choice
    if request.user:
        body["metadata"] = {"user_id": request.user}
    fmt = request.response_format
    if fmt and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            body["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if "top_k" in request.extra:
        body["top_k"] = request.extra["top_k"]
    passthrough = request.extra.get("anthropic")
    if isinstance(passthrough, dict):
        body.update(passthrough)
    if request.stream:
        body["stream"] = True
    return body


class AnthropicWire:
    """`WireFormat` for the Anthropic Messages API. Pure: no I/O, no clock."""

    name = "anthropic"

    def __init__(self, *, default_max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.default_max_tokens = default_max_tokens

    def chat_call(self, request: ChatRequest, model: str) -> HttpCall:
        body = messages_body(request, model, default_max_tokens=self.default_max_tokens)
        # `anthropic-version` is a static header of the provider (providers/anthropic.py), so the
        # transport needs no per-call header dict
        return HttpCall("POST", MESSAGES_PATH, body)

    def chat_response(self, body: bytes) -> ChatResponse:
        return parse_message(body)

    def stream_decoder(self, request: ChatRequest, model: str) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(model)

    def embed_call(self, request: EmbedRequest, model: str) -> HttpCall:
        raise InvalidRequest("anthropic has no embeddings endpoint", param="model")

    def embed_response(self, body: bytes) -> EmbedResponse:
        raise InvalidRequest("anthropic has no embeddings endpoint", param="model")

    def classify_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> HeadwayError:
        return classify_error(status, body, headers)

    def ratelimit(self, headers: Mapping[str, str], now: float) -> RateLimitSnapshot | None:
        return ratelimit_snapshot(headers, now)
