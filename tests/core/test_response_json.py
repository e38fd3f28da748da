"""The stored layout of a response: written and read back without the enum's or the
comprehension's per-call costs, with the same values and the same errors."""

from __future__ import annotations

import orjson
import pytest

from headway.response_json import response_fields, response_from
from headway.types import ChatResponse, FinishReason, ToolCall, Usage


@pytest.mark.parametrize("reason", list(FinishReason))
@pytest.mark.parametrize("calls", [(), (ToolCall("c1", "f", "{}"), ToolCall("c2", "g", "[1]"))])
def test_a_response_round_trips(reason: FinishReason, calls: tuple[ToolCall, ...]) -> None:
    r = ChatResponse("id", "m", "hi", reason, Usage(1, 2, 3, 4, 5), calls, 7, None)
    d = response_fields(r, 1)
    assert type(d["finish"]) is str and d["finish"] == reason.value
    assert d["tools"] == [[c.id, c.name, c.arguments] for c in calls]
    assert response_from(orjson.loads(orjson.dumps(d))) == r


def test_an_unknown_finish_reason_is_refused_as_before() -> None:
    d = response_fields(ChatResponse("id", "m", "hi", FinishReason.STOP, Usage()), 1)
    d["finish"] = "bogus"
    with pytest.raises(ValueError, match="bogus"):
        response_from(d)
