"""The finish-reason table of providers.md 6.1, checked in both directions."""

from __future__ import annotations

import pytest

from headway.types import FinishReason
from headway.wire import finish

F = FinishReason


@pytest.mark.parametrize(
    ("vendor", "neutral"),
    [
        ("end_turn", F.STOP),
        ("stop_sequence", F.STOP),
        ("pause_turn", F.STOP),
        ("max_tokens", F.LENGTH),
        ("model_context_window_exceeded", F.LENGTH),
        ("tool_use", F.TOOL_CALLS),
        ("refusal", F.CONTENT_FILTER),
        ("something_new", F.STOP),
        (None, F.STOP),
    ],
)
def test_anthropic_to_neutral(vendor: str | None, neutral: F) -> None:
    assert finish.from_anthropic(vendor) is neutral


@pytest.mark.parametrize(
    ("neutral", "vendor"),
    [
        (F.STOP, "end_turn"),
        (F.LENGTH, "max_tokens"),
        (F.TOOL_CALLS, "tool_use"),
        (F.CONTENT_FILTER, "refusal"),
    ],
)
def test_neutral_to_anthropic(neutral: F, vendor: str) -> None:
    assert finish.to_anthropic(neutral) == vendor
    assert finish.from_anthropic(vendor) is neutral


def test_anthropic_stop_sequence_when_known() -> None:
    assert finish.to_anthropic(F.STOP, stop_sequence="END") == "stop_sequence"
    assert finish.to_anthropic(F.LENGTH, stop_sequence="END") == "max_tokens"


@pytest.mark.parametrize(
    ("vendor", "calls", "neutral"),
    [
        ("STOP", False, F.STOP),
        ("STOP", True, F.TOOL_CALLS),
        ("MAX_TOKENS", False, F.LENGTH),
        ("MAX_TOKENS", True, F.LENGTH),
        ("SAFETY", False, F.CONTENT_FILTER),
        ("RECITATION", False, F.CONTENT_FILTER),
        ("BLOCKLIST", False, F.CONTENT_FILTER),
        ("PROHIBITED_CONTENT", False, F.CONTENT_FILTER),
        ("SPII", False, F.CONTENT_FILTER),
        ("LANGUAGE", False, F.CONTENT_FILTER),
        ("IMAGE_SAFETY", False, F.CONTENT_FILTER),
        ("MALFORMED_FUNCTION_CALL", False, F.STOP),
        ("UNEXPECTED_TOOL_CALL", False, F.STOP),
        ("OTHER", False, F.STOP),
        ("FINISH_REASON_UNSPECIFIED", False, F.STOP),
        ("BRAND_NEW", False, F.STOP),
    ],
)
def test_gemini_to_neutral(vendor: str, calls: bool, neutral: F) -> None:
    assert finish.from_gemini(vendor, has_tool_calls=calls) is neutral


@pytest.mark.parametrize("neutral", list(F))
def test_gemini_round_trip(neutral: F) -> None:
    vendor = finish.to_gemini(neutral)
    back = finish.from_gemini(vendor, has_tool_calls=neutral is F.TOOL_CALLS)
    assert back is neutral


@pytest.mark.parametrize(
    ("vendor", "neutral"),
    [
        ("stop", F.STOP),
        ("length", F.LENGTH),
        ("tool_calls", F.TOOL_CALLS),
        ("function_call", F.TOOL_CALLS),
        ("content_filter", F.CONTENT_FILTER),
        ("eos", F.STOP),
        (None, F.STOP),
    ],
)
def test_openai_to_neutral(vendor: str | None, neutral: F) -> None:
    assert finish.from_openai(vendor) is neutral


@pytest.mark.parametrize("neutral", list(F))
def test_every_neutral_reason_maps_everywhere_and_back(neutral: F) -> None:
    assert finish.from_openai(finish.to_openai(neutral)) is neutral
    assert finish.from_anthropic(finish.to_anthropic(neutral)) is neutral
