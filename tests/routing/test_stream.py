"""Streams through a chain: deadlines, fallback before the first token, mid-stream recovery.

Scripted fake providers on a FakeClock, so a "30 s stall" is a real 30 s of fake time and the
figures printed are fake-clock seconds."""

from __future__ import annotations

import pytest

from headway.clock import FakeClock
from headway.context import Served
from headway.errors import (
    AllAttemptsFailed,
    HeadwayError,
    StreamInterrupted,
    UpstreamError,
    UpstreamTimeout,
)
from headway.types import ChatChunk, FinishReason, ToolCallDelta
from tests.routing.fakes import ANSWER, OK, TOKENS, Act, FakeProvider, collect, drive
from tests.routing.helpers import context, make_chain, request

STREAM = {"ttft_timeout_s": 2.0, "stall_timeout_s": 5.0}


def text(chunks: list[ChatChunk]) -> str:
    return "".join(c.text for c in chunks)


def check_shape(chunks: list[ChatChunk]) -> None:
    """One stream: one id, role on the first chunk only, one finish at the very end."""
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].role == "assistant" and all(c.role is None for c in chunks[1:])
    assert [c.finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].finish_reason is FinishReason.STOP


async def run(
    clock: FakeClock, chain: object, served: Served | None = None
) -> tuple[list[ChatChunk], float]:
    from headway.routing.chain import Chain

    assert isinstance(chain, Chain)
    gen = chain.stream_with(request(stream=True), context(clock, chain), served or Served())
    return await drive(clock, collect(gen))


async def test_cut_after_40_of_60_tokens_resumes_on_the_same_deployment(
    fake_clock: FakeClock,
) -> None:
    p = FakeProvider("primary", fake_clock, [Act(cut_after=40), OK])
    chain, rec = make_chain(fake_clock, [p], stream=STREAM)
    served = Served()
    chunks, _ = await run(fake_clock, chain, served)
    print(
        f"\ncut after 40/60: client got {len(text(chunks).split())}/60 tokens, whole={text(chunks) == ANSWER}"
    )
    assert text(chunks) == ANSWER
    check_shape(chunks)
    assert p.calls == 2 and p.requests[1].messages[-1].role == "user"  # a restart, no prefill
    assert rec.kinds("stream.") == ["stream.interrupted", "stream.recovered"]
    usage = chunks[-1].usage
    assert usage is not None and served.usage == usage
    assert usage.output_tokens == 40 + 60  # the broken attempt counts (estimated), then the restart
    assert usage.estimated
    assert usage.input_tokens == 2 * p.requests[0].messages[0].text().count(" ") + 2 * 4


async def test_prefill_continues_where_the_stream_broke(fake_clock: FakeClock) -> None:
    p = FakeProvider("primary", fake_clock, [Act(cut_after=40), OK], prefill=True)
    chain, _ = make_chain(fake_clock, [p], stream=STREAM)
    chunks, _ = await run(fake_clock, chain)
    assert text(chunks) == ANSWER
    check_shape(chunks)
    prefill = p.requests[1].messages[-1]
    assert prefill.role == "assistant" and prefill.text() == "".join(TOKENS[:40]).rstrip()
    usage = chunks[-1].usage
    # 40, then the continuation: the trailing space the prefill dropped, and the 20 tokens left
    assert usage is not None and usage.output_tokens == 40 + 21 and usage.estimated


async def test_stall_after_20_tokens_recovers_on_the_next_deployment(fake_clock: FakeClock) -> None:
    primary = FakeProvider(
        "primary", fake_clock, [Act(stall_after=20, stall_s=30.0, per_token=0.01)]
    )
    secondary = FakeProvider("secondary", fake_clock, [Act(ttft=0.3, per_token=0.01)])
    chain, rec = make_chain(fake_clock, [primary, secondary], stream=STREAM)
    served = Served()
    chunks, took = await run(fake_clock, chain, served)
    # 20 tokens, the 5 s stall deadline, then the secondary's restart (0.3 s + 59 tokens)
    bound = 19 * 0.01 + 5.0 + 0.3 + 59 * 0.01
    print(
        f"\nstall 30s after 20 tokens: whole answer in {took:.2f}s (stall deadline 5s + recovery; "
        f"bound {bound:.2f}s)"
    )
    assert text(chunks) == ANSWER
    check_shape(chunks)
    assert took == pytest.approx(bound)
    assert secondary.calls == 1 and primary.calls == 1  # slow: the next deployment goes first
    assert served.deployment == "secondary"
    assert rec.events[0].data["error"].startswith("stalled")


async def test_a_stall_the_provider_reports_as_a_break_still_moves_on(
    fake_clock: FakeClock,
) -> None:
    """The provider's own stall limit can fire before the chain's (here after 4.6 s of silence,
    against the chain's 5 s) and report an interruption; the silence before it still marks the
    deployment as stalled, so recovery goes to the next deployment instead of retrying it."""
    primary = FakeProvider(
        "primary",
        fake_clock,
        [Act(stall_after=20, stall_s=4.6, stall_breaks=True, per_token=0.01)],
    )
    secondary = FakeProvider("secondary", fake_clock, [Act(ttft=0.3, per_token=0.01)])
    chain, _ = make_chain(fake_clock, [primary, secondary], stream=STREAM)
    served = Served()
    chunks, _ = await run(fake_clock, chain, served)
    assert text(chunks) == ANSWER
    assert primary.calls == 1 and secondary.calls == 1
    assert served.deployment == "secondary"


async def test_one_malformed_chunk_is_recovered(fake_clock: FakeClock) -> None:
    p = FakeProvider("primary", fake_clock, [Act(malformed_at=30), OK])
    chain, _ = make_chain(fake_clock, [p], stream=STREAM)
    chunks, _ = await run(fake_clock, chain)
    assert text(chunks) == ANSWER
    check_shape(chunks)


async def test_a_secondary_rejecting_prefill_restarts_without_it(fake_clock: FakeClock) -> None:
    primary = FakeProvider("primary", fake_clock, [Act(cut_after=40)] * 2)
    secondary = FakeProvider("secondary", fake_clock, prefill=True, rejects_prefill=True)
    chain, rec = make_chain(fake_clock, [primary, secondary], stream=STREAM)
    chunks, _ = await run(fake_clock, chain)
    print(
        f"\nprefill rejected: secondary calls {secondary.calls} (prefill, then restart), "
        f"whole={text(chunks) == ANSWER}"
    )
    assert text(chunks) == ANSWER
    check_shape(chunks)
    assert [r.messages[-1].role for r in secondary.requests] == ["assistant", "user"]
    assert rec.count("stream.prefill_rejected") == 1


async def test_recovery_impossible_ends_with_an_explicit_error(fake_clock: FakeClock) -> None:
    a = FakeProvider("a", fake_clock, [Act(cut_after=10)])
    b = FakeProvider("b", fake_clock, [Act(error=UpstreamError("down"))])
    chain, rec = make_chain(fake_clock, [a, b], stream=STREAM)
    received: list[ChatChunk] = []

    async def consume() -> None:
        gen = chain.stream_with(request(stream=True), context(fake_clock, chain), Served())
        async for c in gen:
            received.append(c)

    with pytest.raises(HeadwayError) as err:
        await drive(fake_clock, consume())
    print(f"\nrecovery impossible: {len(received)} chunks then {type(err.value).__name__}")
    assert text(received) == "".join(TOKENS[:10])
    assert all(c.finish_reason is None for c in received)  # never a clean end
    assert isinstance(err.value, AllAttemptsFailed)
    assert rec.count("stream.recovery_failed") == 1


async def test_recovery_off_for_a_route_ends_with_the_break(fake_clock: FakeClock) -> None:
    p = FakeProvider("primary", fake_clock, [Act(cut_after=10), OK])
    chain, _ = make_chain(fake_clock, [p], stream=STREAM, recovery={"enabled": False})
    with pytest.raises(StreamInterrupted):
        await run(fake_clock, chain)
    assert p.calls == 1


async def test_first_token_after_20s_moves_the_call_to_the_secondary(fake_clock: FakeClock) -> None:
    primary = FakeProvider("primary", fake_clock, [Act(ttft=20.0)])
    secondary = FakeProvider("secondary", fake_clock, [Act(ttft=0.4)])
    chain, _ = make_chain(fake_clock, [primary, secondary], stream=STREAM)
    served = Served()
    chunks, took = await run(fake_clock, chain, served)
    print(
        f"\nprimary first token at 20s: TTFT deadline 2s -> served by the secondary in {took:.2f}s"
    )
    assert text(chunks) == ANSWER and served.deployment == "secondary"
    assert served.fallback_depth == 1
    assert took == pytest.approx(2.0 + 0.4)
    assert primary.cancelled == 1


async def test_primary_silent_stream_ends_within_attempt_timeout(fake_clock: FakeClock) -> None:
    primary = FakeProvider("primary", fake_clock, [Act(hang=True)])
    secondary = FakeProvider("secondary", fake_clock, [Act(ttft=0.4)])
    chain, _ = make_chain(
        fake_clock,
        [primary, secondary],
        attempt_timeout_s=3.0,
        stream={"ttft_timeout_s": None, "stall_timeout_s": 5.0},
    )
    chunks, took = await run(fake_clock, chain)
    assert text(chunks) == ANSWER and took == pytest.approx(3.0 + 0.4)


async def test_stream_failing_before_the_first_token_falls_back(fake_clock: FakeClock) -> None:
    a = FakeProvider("a", fake_clock, [Act(error=UpstreamError("500"))])
    b = FakeProvider("b", fake_clock)
    chain, rec = make_chain(fake_clock, [a, b], stream=STREAM)
    chunks, _ = await run(fake_clock, chain)
    assert text(chunks) == ANSWER
    check_shape(chunks)
    assert rec.kinds("stream.") == []  # nothing had reached the caller: plain fallback


async def test_a_stream_that_stops_without_a_finish_is_interrupted(fake_clock: FakeClock) -> None:
    class NoFinish(FakeProvider):
        async def stream(self, request, ctx):  # type: ignore[no-untyped-def]
            self._begin(request, ctx)
            for tok in TOKENS[:5]:
                yield ChatChunk(id="x", model=self.name, text=tok)

    chain, _ = make_chain(fake_clock, [NoFinish("a", fake_clock)], stream=STREAM)
    with pytest.raises(HeadwayError) as err:
        await run(fake_clock, chain)
    assert "without a finish reason" in str(err.value)


async def test_a_restart_that_says_something_else_is_not_spliced(fake_clock: FakeClock) -> None:
    a = FakeProvider("a", fake_clock, [Act(cut_after=10)] * 2)
    other = FakeProvider("b", fake_clock, tokens=[f"z{i} " for i in range(60)])
    chain, rec = make_chain(fake_clock, [a, other], stream=STREAM)
    with pytest.raises(HeadwayError):
        await run(fake_clock, chain)
    assert rec.count("stream.diverged") == 1


async def test_tool_calls_already_sent_cannot_be_spliced(fake_clock: FakeClock) -> None:
    class ToolThenCut(FakeProvider):
        async def stream(self, request, ctx):  # type: ignore[no-untyped-def]
            self._begin(request, ctx)
            yield ChatChunk(id="x", model=self.name, tool_calls=(ToolCallDelta(0, "t1", "f"),))
            raise StreamInterrupted("cut")

    p = ToolThenCut("a", fake_clock)
    chain, _ = make_chain(fake_clock, [p, FakeProvider("b", fake_clock)], stream=STREAM)
    with pytest.raises(StreamInterrupted):
        await run(fake_clock, chain)
    assert p.calls == 1


async def test_a_break_after_the_finish_keeps_the_whole_answer(fake_clock: FakeClock) -> None:
    class CutAfterFinish(FakeProvider):
        async def stream(self, request, ctx):  # type: ignore[no-untyped-def]
            self._begin(request, ctx)
            for tok in TOKENS:
                yield ChatChunk(id="x", model=self.name, text=tok)
            yield ChatChunk(id="x", model=self.name, finish_reason=FinishReason.STOP)
            raise StreamInterrupted("no [DONE]")

    p = CutAfterFinish("a", fake_clock)
    chain, _ = make_chain(fake_clock, [p], stream=STREAM)
    chunks, _ = await run(fake_clock, chain)
    assert text(chunks) == ANSWER and p.calls == 1
    assert chunks[-1].finish_reason is FinishReason.STOP


async def test_hedged_stream_first_token_wins(fake_clock: FakeClock) -> None:
    primary = FakeProvider("primary", fake_clock, [Act(ttft=0.1)] * 25 + [Act(ttft=1.5)])
    secondary = FakeProvider("secondary", fake_clock, [Act(ttft=0.2)])
    chain, rec = make_chain(
        fake_clock, [primary, secondary], stream=STREAM, hedge={"enabled": True}
    )
    for _ in range(25):
        await run(fake_clock, chain)
    served = Served()
    chunks, took = await run(fake_clock, chain, served)
    assert text(chunks) == ANSWER and served.deployment == "secondary"
    check_shape(chunks)
    assert took == pytest.approx(0.1 + 0.2)
    assert rec.count("hedge.sent") == 1 and rec.count("hedge.won") == 1
    assert primary.cancelled == 1


async def test_timeouts_are_enforced_even_if_the_provider_ignores_them(
    fake_clock: FakeClock,
) -> None:
    p = FakeProvider("a", fake_clock, [Act(stall_after=3, stall_s=100.0)])
    chain, _ = make_chain(fake_clock, [p], stream=STREAM, recovery={"enabled": False})
    with pytest.raises(UpstreamTimeout) as err:
        await run(fake_clock, chain)
    assert "stalled" in str(err.value)
    assert fake_clock.monotonic() == pytest.approx(5.0)
