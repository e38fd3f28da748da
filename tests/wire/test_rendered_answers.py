"""`RenderedAnswers` (the cache-hit body memo) gives exactly `chat_response_json`'s bytes."""

from __future__ import annotations

import dataclasses
from typing import Any

from headway.types import ChatResponse, FinishReason, ToolCall, Usage
from headway.wire.openai.ingress import RenderedAnswers, chat_response_json


def _resp(**changes: Any) -> ChatResponse:
    base = ChatResponse(
        "chatcmpl-1",
        "gpt-x",
        "Hello!",
        FinishReason.STOP,
        Usage(19, 3, 4, 0, 1),
        (),
        5,
        None,
    )
    return dataclasses.replace(base, **changes)


VARIANTS: list[dict[str, Any]] = [
    {},
    {"id": "chatcmpl-2"},
    {"content": "Hello?"},
    {"content": None, "refusal": "no"},
    {"finish_reason": FinishReason.LENGTH},
    {"finish_reason": FinishReason.TOOL_CALLS, "tool_calls": (ToolCall("c1", "f", "{}"),)},
    {"usage": Usage(19, 4, 4, 0, 1)},
    {"usage": Usage(19, 3, 0, 0, 1)},
    {"usage": Usage(19, 3, 4, 7, 1)},
    {"usage": Usage(19, 3, 4, 0, 2)},
    {"created": 6},
]


def test_every_field_the_body_shows_is_in_the_key() -> None:
    render = RenderedAnswers()
    for _ in range(2):  # the second round is answered from the memo
        for model in ("alias", "other"):
            for changes in VARIANTS:
                resp = _resp(**changes)
                assert render(resp, model, created=99) == chat_response_json(resp, model)
    assert len(render._known) == 2 * len(VARIANTS)


def test_an_answer_without_created_gets_the_current_time_each_time() -> None:
    render = RenderedAnswers()
    resp = _resp(created=0)
    assert render(resp, "m", created=1) == chat_response_json(resp, "m", created=1)
    assert render(resp, "m", created=2) == chat_response_json(resp, "m", created=2)
    assert not render._known


def test_bounded_by_entries_and_bytes() -> None:
    render = RenderedAnswers(size=3, max_bytes=10_000)
    for i in range(10):
        render(_resp(id=f"id-{i}"), "m")
    assert len(render._known) == 3
    small = RenderedAnswers(max_bytes=800)
    for i in range(10):
        body = small(_resp(id=f"id-{i}"), "m")
        assert body == chat_response_json(_resp(id=f"id-{i}"), "m")
    assert small._bytes == sum(len(b) for b in small._known.values()) <= 800
    small(_resp(content="x" * 1000), "m")  # larger than the bound: rendered, not kept
    assert small._bytes <= 800
