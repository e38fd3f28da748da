"""Mid-stream recovery over HTTP, end to end: fake upstreams break streams (cut, stall, malformed
chunk), the headway server serves the caller through the official OpenAI and Anthropic SDKs, and
the caller must receive the whole answer, or, when no deployment can continue, an explicit error
event and never a clean end. Each test prints its figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import MessageParam, RawContentBlockDeltaEvent, RawMessageDeltaEvent, TextDelta
from openai.types.chat import ChatCompletionMessageParam

from headway.gateway import Gateway
from headway.providers.fake import RunningFake
from tests.chaos.helpers import (
    MESSAGES,
    PROMPT,
    Events,
    Stopwatch,
    fakes,
    gateway,
    requests_at,
)
from tests.server.helpers import running

WIRES = ("openai", "anthropic")


class Read:
    """What a client received: the text, the finish (None if the stream never ended cleanly)
    and the error the SDK raised, if any."""

    def __init__(self) -> None:
        self.text = ""
        self.finish: str | None = None
        self.error: Exception | None = None


OPENAI_MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]
ANTHROPIC_MESSAGES: list[MessageParam] = [{"role": "user", "content": PROMPT}]


async def read_openai(base: str) -> Read:
    out = Read()
    async with openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0) as client:
        try:
            stream = await client.chat.completions.create(
                model="r", messages=OPENAI_MESSAGES, stream=True
            )
            async for chunk in stream:
                if chunk.choices:
                    out.text += chunk.choices[0].delta.content or ""
                    out.finish = chunk.choices[0].finish_reason or out.finish
        except openai.APIError as exc:
            out.error = exc
    return out


async def read_anthropic(base: str) -> Read:
    out = Read()
    async with anthropic.AsyncAnthropic(base_url=base, api_key="x", max_retries=0) as client:
        try:
            stream = await client.messages.create(
                model="r", max_tokens=1024, messages=ANTHROPIC_MESSAGES, stream=True
            )
            async for event in stream:
                if isinstance(event, RawContentBlockDeltaEvent) and isinstance(
                    event.delta, TextDelta
                ):
                    out.text += event.delta.text
                elif isinstance(event, RawMessageDeltaEvent):
                    out.finish = event.delta.stop_reason
        except anthropic.APIError as exc:
            out.error = exc
    return out


async def read(wire: str, base: str) -> Read:
    return await (read_openai(base) if wire == "openai" else read_anthropic(base))


async def reference(gw: Gateway) -> str:
    """The answer the route's model gives when nothing breaks."""
    reply = await gw.chat(model="secondary", messages=MESSAGES)
    assert reply.content
    return reply.content


FAULTS: dict[str, dict[str, Any]] = {
    "cut after 40 of 60 tokens": {"cut_after_tokens": 40, "fault_requests": 1},
    # scaling x0.1: a 3 s stall stands for 30 s, with a 0.2 s stall deadline
    "stall for 30s after 20 tokens": {"stall_after_tokens": 20, "stall_s": 3.0},
    "one malformed chunk": {"malformed_after_tokens": 30, "fault_requests": 1},
}
STALL_S = 0.2
ROUTE = {"stream": {"ttft_timeout_s": 2.0, "stall_timeout_s": STALL_S}}


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_broken_stream_reaches_the_client_whole(
    tmp_path: Path, wire: str, fault: str
) -> None:
    async with (
        fakes() as (primary, secondary),
        gateway(tmp_path, [primary, secondary], ROUTE) as gw,
    ):
        events = Events(gw)
        whole = await reference(gw)
        async with running(gw) as base:
            with Stopwatch() as clean:
                first = await read(wire, base)  # warm-up, and the time of a clean attempt
            await primary.control(**FAULTS[fault])
            before = await requests_at(primary)
            with Stopwatch() as sw:
                got = await read(wire, base)
            primary_attempts = await requests_at(primary) - before
    assert first.text == whole
    print(
        f"\n{fault} [{wire}]: client got {len(got.text)}/{len(whole)} chars, whole="
        f"{got.text == whole}, finish={got.finish}, {sw.took:.3f}s "
        f"(stall deadline {STALL_S}s + a clean attempt {clean.took:.3f}s)"
    )
    assert got.error is None
    assert got.text == whole
    assert got.finish in ("stop", "end_turn")
    assert events.kinds("stream.") == ["stream.interrupted", "stream.recovered"]
    if fault.startswith("stall"):
        # a deployment that went quiet is left for the rest of the answer, not tried again
        # (a cut or a bad chunk may be retried in place: those faults hit one request only)
        assert primary_attempts == 1
        # the stall was cut at the stall deadline, not waited out (it lasts 15x longer); a
        # structural bound, not a speed assertion: the wait is STALL_S plus one clean attempt
        assert sw.took < FAULTS[fault]["stall_s"]


@pytest.mark.parametrize("wire", WIRES)
async def test_a_secondary_rejecting_prefill_still_gets_the_whole_answer(
    tmp_path: Path, wire: str
) -> None:
    async with (
        fakes(flavour="anthropic") as (primary, secondary),
        gateway(
            tmp_path, [primary, secondary], ROUTE, kind="anthropic", model="claude-sonnet-4-5"
        ) as gw,
    ):
        events = Events(gw)
        whole = await reference(gw)
        await primary.control(stall_after_tokens=20, stall_s=3.0)
        await secondary.control(reject_prefill=True)
        async with running(gw) as base:
            got = await read(wire, base)
        rejected = (await secondary.stats())["engine"]["prefill_rejected"]
    print(
        f"\nprefill rejected by the secondary [{wire}]: whole={got.text == whole}, "
        f"prefill attempts refused {rejected}, then restarted without it"
    )
    assert got.error is None and got.text == whole
    assert rejected == 1
    assert "stream.prefill_rejected" in events.kinds("stream.")


@pytest.mark.parametrize("wire", WIRES)
async def test_recovery_impossible_ends_with_an_explicit_error_event(
    tmp_path: Path, wire: str
) -> None:
    async with (
        fakes() as (primary, secondary),
        gateway(tmp_path, [primary, secondary], ROUTE) as gw,
    ):
        whole = await reference(gw)
        await primary.control(cut_after_tokens=10)
        await secondary.control(error_rate=1.0, error_status=500)
        async with running(gw) as base:
            got = await read(wire, base)
    print(
        f"\nrecovery impossible [{wire}]: client got {len(got.text)} chars then "
        f"{type(got.error).__name__}: {got.error}"
    )
    assert got.error is not None  # an error event, never a clean end
    assert got.finish is None
    assert 0 < len(got.text) < len(whole) and whole.startswith(got.text)


async def _silent(fake: RunningFake) -> None:
    await fake.control(hang=True)


async def test_primary_silent_stream_moves_to_the_secondary(tmp_path: Path) -> None:
    attempt = 0.3  # scaling: stands for a production 30 s attempt timeout
    route = {"attempt_timeout_s": attempt, "stream": {"ttft_timeout_s": None}}
    async with fakes() as (primary, secondary):
        await _silent(primary)
        async with gateway(tmp_path, [primary, secondary], route) as gw:
            whole = await reference(gw)
            with Stopwatch() as sw:
                chunks = [c async for c in gw.stream(model="r", messages=MESSAGES)]
    print(
        f"\nprimary silent (stream): whole answer from the secondary in {sw.took:.3f}s "
        f"(attempt timeout {attempt}s)"
    )
    assert "".join(c.text for c in chunks) == whole
    assert attempt <= sw.took <= attempt + 0.25
