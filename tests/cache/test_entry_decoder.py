"""Decoded entries are remembered per key, and every hit gets its own copy of the answer."""

from __future__ import annotations

from headway.cache.entry import Decoder, Entry, decode, encode
from headway.clock import FakeClock
from headway.types import ChatResponse, FinishReason, ToolCall, Usage
from tests.cache.test_stage import Counting, ask, call, gateway


def _entry(text: str = "hello", expires: float = 200.0) -> Entry:
    response = ChatResponse(
        "id-1",
        "m",
        text,
        FinishReason("tool_calls"),
        Usage(10, 5, 2, 1, 3, True),
        (ToolCall("c1", "f", '{"a": 1}'),),
        123,
        None,
    )
    return Entry(response, 100.0, expires, "t1", "default", "q")


def test_a_remembered_entry_answers_like_a_fresh_decode() -> None:
    decoder = Decoder()
    raw = encode(_entry())
    first = decoder("k", raw)
    again = decoder("k", bytes(raw))  # equal bytes, another object (as Redis returns them)
    fresh = decode(raw)
    assert first is again  # remembered
    assert again == fresh
    assert again is not None and fresh is not None
    assert again.answer() == fresh.response == fresh.answer()


def test_each_answer_is_a_copy_a_caller_may_change() -> None:
    entry = _entry()
    one, two = entry.answer(), entry.answer()
    assert one == two == entry.response
    one.content = "changed"
    one.usage.output_tokens = 999
    assert two.content == entry.response.content == "hello"
    assert two.usage.output_tokens == entry.response.usage.output_tokens == 5
    assert one.usage is not two.usage


def test_rewritten_bytes_are_decoded_again_and_the_memory_is_bounded() -> None:
    decoder = Decoder(size=2)
    old = decoder("k", encode(_entry("old")))
    new = decoder("k", encode(_entry("new")))
    assert old is not None and new is not None
    assert (old.response.content, new.response.content) == ("old", "new")
    for key in ("a", "b", "c"):
        decoder(key, encode(_entry(key)))
    assert len(decoder._known) == 2
    assert decoder("x", b'{"v": 999}') is None  # another layout: a miss, not remembered
    assert "x" not in decoder._known


async def test_a_caller_changing_its_cached_answer_does_not_change_the_next_hit(
    fake_clock: FakeClock,
) -> None:
    p = Counting("a")
    async with gateway(fake_clock, p) as gw:
        await ask(gw, call("What is the capital of Peru?"))
        hit = call("What is the capital of Peru?")
        mine = await ask(gw, hit)
        assert hit.served.cache == "exact" and hit.served.usage is mine.usage
        mine.content = "tampered"
        assert mine.usage is not None
        mine.usage.input_tokens = 10**6
        again = call("What is the capital of Peru?")
        reply = await ask(gw, again)
        assert again.served.cache == "exact" and p.calls == 1
        assert reply.content == "a: What is the capital of Peru?"
        assert reply.usage.input_tokens != 10**6
