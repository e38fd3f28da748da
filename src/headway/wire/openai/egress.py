"""The OpenAI `WireFormat`: neutral requests -> OpenAI Chat Completions / Embeddings bodies, and
back (via `decode` and `classify`). Pure: no I/O, no clock.

One class serves OpenAI, Azure and every OpenAI-compatible server; what differs between them is
an `OpenAIOptions` value, chosen by the provider factory from config:
- which field carries the output cap: o-series and gpt-5 reject `max_tokens`, Ollama ignores
  `max_completion_tokens` (providers.md 2.2, 7.2);
- whether the `developer` role is understood (local servers may not know it);
- how embeddings travel (base64 is a third of the bytes of JSON floats).

Streams always ask for `stream_options.include_usage`, so usage is accounted for every stream.
`metadata` is forwarded only with `store` (OpenAI rejects metadata otherwise, and metadata often
carries controls meant for headway).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from headway.errors import HeadwayError
from headway.providers.base import HttpCall, RateLimitSnapshot
from headway.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    ImagePart,
    Message,
    TextPart,
    ToolSpec,
)
from headway.wire.openai.classify import classify_error, ratelimit_snapshot
from headway.wire.openai.decode import OpenAIStreamDecoder, parse_chat_response, parse_embeddings
from headway.wire.util import data_url, plain_call_id

CHAT_PATH = "/chat/completions"
EMBEDDINGS_PATH = "/embeddings"

MaxTokensParam = Literal["max_tokens", "max_completion_tokens"]

# Reasoning families that reject `max_tokens` (o1, o3, o4-mini, gpt-5*); a router prefix
# (`openai/gpt-5`) is ignored.
_COMPLETION_TOKENS_MODELS = re.compile(r"^(?:o\d|gpt-5)")
# Fields headway itself sets; `extra` may not override them. "anthropic" and "gemini" hold
# vendor-only fields kept by the other ingresses for a same-vendor trip; OpenAI would reject them.
_RESERVED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "anthropic",
        "gemini",
    }
)


def max_tokens_param_for(model: str) -> MaxTokensParam:
    name = model.rsplit("/", 1)[-1].lower()
    return "max_completion_tokens" if _COMPLETION_TOKENS_MODELS.match(name) else "max_tokens"


@dataclass(slots=True, frozen=True)
class OpenAIOptions:
    #: label used in error messages and `HeadwayError.provider`
    provider: str = "openai"
    #: None: by model family (`max_tokens_param_for`)
    max_tokens_param: MaxTokensParam | None = None
    #: send `developer` as is; False maps it to `system` (servers that predate the role)
    developer_role: bool = True
    embedding_encoding: Literal["float", "base64"] = "base64"


def _part(part: TextPart | ImagePart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    url = part.url or data_url(part.media_type or "image/png", part.data or "")
    image: dict[str, Any] = {"url": url}
    if part.detail:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def message_json(m: Message, *, developer_role: bool = True) -> dict[str, Any]:
    role = "system" if m.role == "developer" and not developer_role else m.role
    out: dict[str, Any] = {"role": role}
    content = m.content
    if content is None:
        out["content"] = None if role == "assistant" else ""
    elif isinstance(content, str):
        out["content"] = content
    elif role in ("user", "assistant") and any(isinstance(p, ImagePart) for p in content):
        out["content"] = [_part(p) for p in content]
    else:
        # system, developer and tool turns take text; joining keeps every server happy
        out["content"] = m.text()
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": plain_call_id(c.id),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = plain_call_id(m.tool_call_id)
    if m.name:
        out["name"] = m.name
    return out


def tool_json(tool: ToolSpec) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        fn["description"] = tool.description
    fn["parameters"] = tool.parameters or {"type": "object", "properties": {}}
    if tool.strict is not None:
        fn["strict"] = tool.strict
    return {"type": "function", "function": fn}


def _tool_choice(choice: str) -> str | dict[str, Any]:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def chat_body(request: ChatRequest, model: str, options: OpenAIOptions) -> dict[str, Any]:
    turns = request.messages
    developer_role = options.developer_role
    if len(turns) == 1:  # a single turn, as many calls are: no comprehension frame
        messages = [message_json(turns[0], developer_role=developer_role)]
    else:
        messages = [message_json(m, developer_role=developer_role) for m in turns]
    body: dict[str, Any] = {"model": model, "messages": messages}
    extra = request.extra
    cap = request.max_tokens
    if cap is None and extra:  # a caller may have sent either spelling as an unknown field
        cap = extra.get("max_completion_tokens", extra.get("max_tokens"))
    if cap is not None:
        body[options.max_tokens_param or max_tokens_param_for(model)] = cap
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop)
    if request.tools:
        # OpenAI rejects tool_choice and parallel_tool_calls without tools
        body["tools"] = [tool_json(t) for t in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
        if request.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.response_format is not None:
        body["response_format"] = request.response_format
    if request.seed is not None:
        body["seed"] = request.seed
    if request.n != 1:
        body["n"] = request.n
    if request.user is not None:
        body["user"] = request.user
    if request.metadata and extra.get("store"):
        body["metadata"] = request.metadata
    for key, value in extra.items():
        if key not in _RESERVED and key not in body:
            body[key] = value
    if request.stream:
        body["stream"] = True
        options_in = extra.get("stream_options")
        stream_options = dict(options_in) if isinstance(options_in, dict) else {}
        stream_options["include_usage"] = True
        body["stream_options"] = stream_options
    return body


def embed_body(request: EmbedRequest, model: str, options: OpenAIOptions) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "input": [x if isinstance(x, str) else list(x) for x in request.inputs],
        "encoding_format": options.embedding_encoding,
    }
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.user is not None:
        body["user"] = request.user
    return body


class OpenAIWire:
    """`WireFormat` for OpenAI Chat Completions and Embeddings (and Azure, vLLM, Ollama...)."""

    __slots__ = ("name", "options")

    def __init__(self, options: OpenAIOptions | None = None) -> None:
        self.options = options or OpenAIOptions()
        self.name = "openai"

    def chat_call(self, request: ChatRequest, model: str) -> HttpCall:
        return HttpCall("POST", CHAT_PATH, chat_body(request, model, self.options))

    def chat_response(self, body: bytes) -> ChatResponse:
        return parse_chat_response(body, provider=self.options.provider)

    def stream_decoder(self, request: ChatRequest, model: str) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder(request, model, provider=self.options.provider)

    def embed_call(self, request: EmbedRequest, model: str) -> HttpCall:
        return HttpCall("POST", EMBEDDINGS_PATH, embed_body(request, model, self.options))

    def embed_response(self, body: bytes) -> EmbedResponse:
        return parse_embeddings(body, provider=self.options.provider)

    def classify_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> HeadwayError:
        return classify_error(status, body, headers, provider=self.options.provider)

    def ratelimit(self, headers: Mapping[str, str], now: float) -> RateLimitSnapshot | None:
        return ratelimit_snapshot(headers, now)
