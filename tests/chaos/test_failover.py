"""Chaos over HTTP, non-streamed and streamed calls through the Gateway: failing, hanging,
recovering and throttling upstreams. Each test prints its figure."""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path

import pytest

from headway.errors import ContentFiltered, ContextLengthExceeded, HeadwayError
from tests.chaos.helpers import (
    MESSAGES,
    Events,
    Stopwatch,
    fakes,
    gateway,
    p99,
    requests_at,
)
from tests.providers.openai_server import Reply, ScriptedServer, completion, error_body

BREAKER = {"consecutive_failures": 3, "min_volume": 1000, "cooldown_s": 30.0}


async def test_primary_answering_500s_no_errors_reach_clients(tmp_path: Path) -> None:
    async with fakes() as (primary, secondary):
        await primary.control(error_rate=1.0, error_status=500)
        async with gateway(tmp_path, [primary, secondary], {"breaker": BREAKER}) as gw:
            events = Events(gw)
            errors = 0

            async def one(i: int) -> None:
                nonlocal errors
                try:
                    if i % 2:
                        await gw.chat(model="r", messages=MESSAGES)
                    else:
                        async for _ in gw.stream(model="r", messages=MESSAGES):
                            pass
                except HeadwayError:
                    errors += 1

            for batch in range(10):
                await asyncio.gather(*(one(batch * 4 + i) for i in range(4)))
            at_primary = await requests_at(primary)
    print(
        f"\n500s at primary: 40 calls (chat + stream, 4 at a time), {errors} errors reached "
        f"clients; primary tried {at_primary}x before its breaker opened"
    )
    assert errors == 0
    assert at_primary <= 3 + 3  # the threshold, plus calls already in flight when it opened
    assert events.kinds("breaker.") == ["breaker.opened"]


async def test_primary_hanging_bounded_latency_then_breaker(tmp_path: Path) -> None:
    # scaling: a 1 s attempt timeout stands for a production 30 s one
    attempt = 1.0
    route = {"attempt_timeout_s": attempt, "breaker": BREAKER}
    async with fakes() as (primary, secondary):
        await primary.control(hang=True)
        async with gateway(tmp_path, [primary, secondary], route) as gw:
            direct: list[float] = []
            for _ in range(10):  # the secondary's own latency, measured in this run
                with Stopwatch() as sw:
                    await gw.chat(model="secondary", messages=MESSAGES)
                direct.append(sw.took)
            took: list[float] = []
            for _ in range(20):
                with Stopwatch() as sw:
                    reply = await gw.chat(model="r", messages=MESSAGES)
                assert reply.content
                took.append(sw.took)
            at_primary = await requests_at(primary)
    bound = (attempt + p99(direct)) * 1.1
    print(
        f"\nprimary hanging: client P99 {p99(took):.3f}s <= bound {bound:.3f}s "
        f"(attempt timeout {attempt}s + secondary P99 {p99(direct):.3f}s + 10%); "
        f"primary attempts {at_primary}; after the breaker opened median "
        f"{statistics.median(took[3:]):.4f}s"
    )
    assert p99(took) <= bound
    assert at_primary == 3  # then the breaker sent calls straight to the secondary
    assert statistics.median(took[3:]) < attempt / 4


async def test_primary_recovered_traffic_returns_after_cooldown_and_one_probe(
    tmp_path: Path,
) -> None:
    # scaling: a 0.5 s cooldown stands for a production 30 s one
    cooldown = 0.5
    route = {"breaker": {**BREAKER, "cooldown_s": cooldown}}
    async with fakes() as (primary, secondary):
        await primary.control(error_rate=1.0, error_status=503)
        async with gateway(tmp_path, [primary, secondary], route) as gw:
            events = Events(gw)
            for _ in range(3):
                await gw.chat(model="r", messages=MESSAGES)
            assert events.kinds("breaker.") == ["breaker.opened"]
            await primary.control(error_rate=0.0)  # the primary recovers
            with Stopwatch() as sw:
                while True:
                    before = await requests_at(primary)
                    await gw.chat(model="r", messages=MESSAGES)
                    if await requests_at(primary) > before:
                        break
                    await asyncio.sleep(0.02)  # a steady trickle of traffic, 50 calls/s
            after = await requests_at(primary)
            await gw.chat(model="r", messages=MESSAGES)
            assert await requests_at(primary) == after + 1  # closed again: traffic is back
    print(
        f"\nrecovery: traffic back at the primary {sw.took:.3f}s after it recovered "
        f"(cooldown {cooldown}s + one probe)"
    )
    assert sw.took <= cooldown + 0.25
    assert events.kinds("breaker.") == ["breaker.opened", "breaker.half_opened", "breaker.closed"]


async def test_429_storm_upstream_attempts_stay_within_the_retry_budget(tmp_path: Path) -> None:
    calls, ratio, floor = 60, 0.1, 2
    route = {
        "breaker": {"enabled": False},
        "retry": {
            "retries_per_deployment": 3,
            "budget_ratio": ratio,
            "budget_min_retries": floor,
            "budget_window_s": 60.0,
        },
    }
    async with fakes(1) as (only,):
        await only.control(error_rate=1.0, error_status=429, error_retry_after_s=0.02)
        async with gateway(tmp_path, [only], route) as gw:
            events = Events(gw)
            failures = 0

            async def one() -> None:
                nonlocal failures
                try:
                    await gw.chat(model="r", messages=MESSAGES)
                except HeadwayError as exc:
                    assert exc.status == 429  # the caller sees the throttling, with retry-after
                    assert exc.retry_after is not None
                    failures += 1

            for _ in range(calls // 10):
                await asyncio.gather(*(one() for _ in range(10)))
            attempts = await requests_at(only)
    allowed = calls + floor + int(ratio * calls)
    print(
        f"\n429 storm: {calls} calls -> {attempts} upstream attempts counted at the fake "
        f"(budget allows {allowed}; unbudgeted {calls * 4}); retries "
        f"{events.kinds('retry').count('retry')}"
    )
    assert failures == calls
    assert calls < attempts <= allowed


@pytest.mark.parametrize(
    ("code", "error"),
    [("content_filter", ContentFiltered), ("context_length_exceeded", ContextLengthExceeded)],
)
async def test_a_400_is_sent_once_and_not_routed_around(
    tmp_path: Path, code: str, error: type[HeadwayError]
) -> None:
    primary, secondary = ScriptedServer(), ScriptedServer()
    for s in (primary, secondary):
        await s.server.start_server()
    try:
        body = error_body("refused", "invalid_request_error", code)
        primary.default = Reply(status=400, json=body)
        secondary.default = Reply(json=completion("from the secondary"))
        fakes_like = [_Url(primary.url), _Url(secondary.url)]
        async with gateway(tmp_path, fakes_like, {}) as gw:  # type: ignore[arg-type]
            with pytest.raises(error):
                await gw.chat(model="r", messages=MESSAGES)
        print(
            f"\n400 {code}: primary attempts {len(primary.seen)}, secondary {len(secondary.seen)}"
        )
        assert (len(primary.seen), len(secondary.seen)) == (1, 0)
    finally:
        for s in (primary, secondary):
            s.release.set()
            await s.server.close()


class _Url:
    """Enough of a RunningFake for `config` (a scripted server's base URL)."""

    def __init__(self, root: str) -> None:
        self.url = root + "/v1"
        self.root_url = root


async def test_primary_silent_non_streamed_call_ends_within_attempt_timeout(
    tmp_path: Path,
) -> None:
    attempt = 0.5  # scaling: stands for a production 30 s attempt timeout
    async with fakes() as (primary, secondary):
        await primary.control(hang=True)
        async with gateway(tmp_path, [primary, secondary], {"attempt_timeout_s": attempt}) as gw:
            with Stopwatch() as direct:
                await gw.chat(model="secondary", messages=MESSAGES)
            with Stopwatch() as sw:
                await gw.chat(model="r", messages=MESSAGES)
    # 0.1 s of slack for scheduling on a loaded machine: still far below what a missed deadline costs
    bound = (attempt + direct.took) * 1.1 + 0.1
    print(
        f"\nprimary silent: call ended in {sw.took:.3f}s (attempt timeout {attempt}s + "
        f"secondary {direct.took:.3f}s; bound {bound:.3f}s)"
    )
    assert attempt <= sw.took <= bound


async def test_first_token_after_20s_moves_the_stream_to_the_secondary(tmp_path: Path) -> None:
    # scaling x0.1: the primary's first token comes after 2 s (for 20 s), the TTFT deadline is
    # 0.2 s (for 2 s)
    ttft = 0.2
    route = {"stream": {"ttft_timeout_s": ttft, "stall_timeout_s": 1.0}}
    async with fakes() as (primary, secondary):
        await primary.control(slow_ms=2000)
        async with gateway(tmp_path, [primary, secondary], route) as gw:
            with Stopwatch() as direct:
                ref = [c async for c in gw.stream(model="secondary", messages=MESSAGES)]
            with Stopwatch() as sw:
                chunks = [c async for c in gw.stream(model="r", messages=MESSAGES)]
    text = "".join(c.text for c in chunks)
    # 0.1 s of slack for scheduling on a loaded machine; waiting for the primary would take 2 s
    bound = (ttft + direct.took) * 1.1 + 0.1
    print(
        f"\nprimary first token at 2s (scaled 20s): secondary answered in {sw.took:.3f}s "
        f"(TTFT deadline {ttft}s + secondary {direct.took:.3f}s; bound {bound:.3f}s)"
    )
    assert text == "".join(c.text for c in ref)
    assert sw.took <= bound
