"""Finish reasons across wire formats (providers.md 6.1), in both directions.

The neutral `FinishReason` uses OpenAI's vocabulary. Every vendor value maps to one neutral value;
every neutral value maps back to one vendor value, and `to_x(from_x(v))` is stable for the
canonical vendor value of each meaning. Unknown vendor values degrade to `stop`, as OpenAI clients
expect (providers.md 7.4): a finish reason is never a reason to fail a call.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from headway.types import FinishReason

STOP, LENGTH, TOOLS, FILTER = (
    FinishReason.STOP,
    FinishReason.LENGTH,
    FinishReason.TOOL_CALLS,
    FinishReason.CONTENT_FILTER,
)

# ---- OpenAI (and every OpenAI-compatible server) ---------------------------------------------

OPENAI_TO_NEUTRAL: Mapping[str, FinishReason] = MappingProxyType(
    {
        "stop": STOP,
        "length": LENGTH,
        "tool_calls": TOOLS,
        "function_call": TOOLS,  # the deprecated predecessor of tool_calls
        "content_filter": FILTER,
    }
)


def from_openai(value: str | None) -> FinishReason:
    return OPENAI_TO_NEUTRAL.get(value or "", STOP)


def to_openai(reason: FinishReason) -> str:
    return reason.value


# ---- Anthropic --------------------------------------------------------------------------------

ANTHROPIC_TO_NEUTRAL: Mapping[str, FinishReason] = MappingProxyType(
    {
        "end_turn": STOP,
        "stop_sequence": STOP,
        "pause_turn": STOP,  # a server-tool loop paused; the caller resends to continue
        "max_tokens": LENGTH,
        "model_context_window_exceeded": LENGTH,
        "tool_use": TOOLS,
        "refusal": FILTER,
    }
)

NEUTRAL_TO_ANTHROPIC: Mapping[FinishReason, str] = MappingProxyType(
    {STOP: "end_turn", LENGTH: "max_tokens", TOOLS: "tool_use", FILTER: "refusal"}
)


def from_anthropic(value: str | None) -> FinishReason:
    return ANTHROPIC_TO_NEUTRAL.get(value or "", STOP)


def to_anthropic(reason: FinishReason, *, stop_sequence: str | None = None) -> str:
    """`stop_sequence` is the matched stop string when the gateway knows one matched."""
    if reason is STOP and stop_sequence:
        return "stop_sequence"
    return NEUTRAL_TO_ANTHROPIC[reason]


# ---- Gemini -----------------------------------------------------------------------------------

GEMINI_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "LANGUAGE",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "IMAGE_OTHER",
    }
)

GEMINI_TO_NEUTRAL: Mapping[str, FinishReason] = MappingProxyType(
    {
        "STOP": STOP,
        "MAX_TOKENS": LENGTH,
        # a bad or unwanted tool call produced no usable call: the turn simply ended
        "MALFORMED_FUNCTION_CALL": STOP,
        "UNEXPECTED_TOOL_CALL": STOP,
        "TOO_MANY_TOOL_CALLS": STOP,
        "OTHER": STOP,
        "FINISH_REASON_UNSPECIFIED": STOP,
        "NO_IMAGE": STOP,
        **dict.fromkeys(GEMINI_FILTERED, FILTER),
    }
)

# Gemini has no tool-specific reason: a call ends with STOP plus functionCall parts.
NEUTRAL_TO_GEMINI: Mapping[FinishReason, str] = MappingProxyType(
    {STOP: "STOP", LENGTH: "MAX_TOKENS", TOOLS: "STOP", FILTER: "SAFETY"}
)


def from_gemini(value: str | None, *, has_tool_calls: bool = False) -> FinishReason:
    reason = GEMINI_TO_NEUTRAL.get(value or "", STOP)
    if has_tool_calls and reason is STOP:
        return TOOLS
    return reason


def to_gemini(reason: FinishReason) -> str:
    return NEUTRAL_TO_GEMINI[reason]
