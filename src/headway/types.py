"""Provider-neutral values that flow through the pipeline.

Ingress translators turn OpenAI- or Anthropic-shaped bodies into these; egress adapters turn them
into each provider's wire format. Plain slotted dataclasses: cheap to build on the hot path, easy
to copy with `dataclasses.replace`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "developer", "user", "assistant", "tool"]


@dataclass(slots=True, frozen=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass(slots=True, frozen=True)
class ImagePart:
    """An image by URL (http(s) or a data: URL). `media_type`/`data` are set for base64 images."""

    url: str
    detail: str | None = None
    media_type: str | None = None
    data: str | None = None
    type: Literal["image"] = "image"


ContentPart = TextPart | ImagePart


@dataclass(slots=True, frozen=True)
class ToolCall:
    """A call the model asked for. `arguments` is a JSON string, as in OpenAI's wire format."""

    id: str
    name: str
    arguments: str


# Not frozen: a frozen dataclass sets each field through object.__setattr__ (4.7 vs 2.9 us per
# message measured), and a request carries every turn of the conversation. Nothing hashes messages.
@dataclass(slots=True)
class Message:
    role: Role
    content: str | tuple[ContentPart, ...] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    is_error: bool = False  # tool results only: the tool failed (Anthropic `is_error`)

    def text(self) -> str:
        """All text of the message, images left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@dataclass(slots=True, frozen=True)
class ToolSpec:
    name: str
    description: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    strict: bool | None = None


ToolChoice = Literal["auto", "none", "required"] | str  # a plain tool name means "call this one"


class FinishReason(enum.StrEnum):
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"


@dataclass(slots=True)
class ChatRequest:
    """One chat call. `model` is what the caller asked for: a route alias or a model name.

    A value: never changed once built (copy it with `dataclasses.replace`). Not declared frozen
    because a frozen dataclass's `__init__` sets each of these 17 fields through
    `object.__setattr__`, which cost ~2.5 us per request, 5x a plain one; it was never hashable
    anyway (`extra` is a dict)."""

    model: str
    messages: tuple[Message, ...]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    seed: int | None = None
    n: int = 1
    user: str | None = None
    metadata: dict[str, str] | None = None
    stream: bool = False
    include_usage: bool = False
    # Provider-specific fields passed through untouched (e.g. `reasoning_effort`, `top_k`).
    extra: dict[str, Any] = field(default_factory=dict)

    def system_text(self) -> str:
        return "\n\n".join(m.text() for m in self.messages if m.role in ("system", "developer"))


@dataclass(slots=True)
class Usage:
    """Token counts. `input_tokens` includes cached input, as OpenAI's `prompt_tokens` does."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    #: the provider reported no usage; headway counted the tokens itself (approximate)
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cached_input_tokens += other.cached_input_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.estimated = self.estimated or other.estimated


@dataclass(slots=True)
class ChatResponse:
    id: str
    model: str
    content: str | None
    finish_reason: FinishReason
    usage: Usage
    tool_calls: tuple[ToolCall, ...] = ()
    created: int = 0
    refusal: str | None = None


@dataclass(slots=True, frozen=True)
class ToolCallDelta:
    """A fragment of a streamed tool call: the first carries id and name, later ones arguments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class ChatChunk:
    """One streamed event. The last chunk of a stream carries `finish_reason`; usage may come in a
    chunk of its own (OpenAI) or with the finish (Anthropic, Gemini)."""

    id: str
    model: str
    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    created: int = 0
    role: str | None = None
    #: a piece of the model's refusal (OpenAI's `delta.refusal`: structured outputs it declined)
    refusal: str = ""


@dataclass(slots=True, frozen=True)
class EmbedRequest:
    model: str
    inputs: tuple[str, ...] | tuple[tuple[int, ...], ...]
    dimensions: int | None = None
    user: str | None = None
    #: how the caller wants vectors on the wire (OpenAI ingress); providers may ignore it
    encoding_format: Literal["float", "base64"] = "float"


@dataclass(slots=True)
class EmbedResponse:
    model: str
    vectors: list[list[float]]
    usage: Usage


@dataclass(slots=True, frozen=True)
class ModelInfo:
    id: str
    owned_by: str = "headway"
    created: int = 0
    sunset: str | None = None  # ISO date after which the model is no longer served
