"""The fake upstream's delay timers: order, never early, jitter bounds, and the answer log.

Nothing here asserts a speed or a precision: only that callbacks run when and where they must.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from bench.harness import upstream_log, wait_idle
from bench.procs import Cores, Procs
from bench.timers import TIMERS, AnswerLog, Callback, Delayed

from bench import wrk


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    running = Procs(tmp_path, Cores(None, None))
    try:
        yield running
    finally:
        running.stop_all()


@pytest.mark.parametrize("kind", sorted(TIMERS))
async def test_timer_runs_callbacks_on_the_loop_in_deadline_order_never_early(kind: str) -> None:
    loop = asyncio.get_running_loop()
    timer = TIMERS[kind](loop)
    ran: list[tuple[str, float, float, bool]] = []
    done = asyncio.Event()

    def at(name: str, delay: float) -> None:
        due = time.monotonic() + delay

        def run() -> None:
            ran.append((name, time.monotonic(), due, threading.current_thread() is main))
            if len(ran) == 4:
                done.set()

        timer.later(delay, run)

    main = threading.current_thread()
    at("c", 0.030)
    at("a", 0.010)
    at("b", 0.020)
    at("a2", 0.010)
    await asyncio.wait_for(done.wait(), 10)
    assert [name for name, *_ in ran] == ["a", "a2", "b", "c"]
    assert all(on_loop for *_, on_loop in ran)
    if kind == "precise":  # the loop's millisecond grid may fire up to a millisecond early
        assert all(when >= due for _, when, due, _ in ran)


class _Recorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    def later(self, delay: float, callback: Callback) -> None:
        self.delays.append(delay)
        callback()


def test_jitter_spreads_delays_within_bounds_repeatably() -> None:
    first, second, fixed = _Recorder(), _Recorder(), _Recorder()
    calls: list[int] = []
    for recorder, jitter in ((first, 0.002), (second, 0.002), (fixed, 0.0)):
        delayed = Delayed(recorder, 0.05, jitter)
        for _ in range(200):
            delayed.later(lambda: calls.append(1))
    assert len(calls) == 600
    assert first.delays == second.delays  # seeded: a rerun sees the same delays
    assert all(0.048 <= d <= 0.052 for d in first.delays)
    assert len(set(first.delays)) == 200
    assert fixed.delays == [0.05] * 200
    assert Delayed(fixed, 0.001, jitter=0.5).jitter == 0.001  # never a negative delay


def test_answer_log_counts_bunched_answers_and_lateness_per_window() -> None:
    log = AnswerLog()
    log.add(now=1.0, due=0.9999)  # 100 us late
    log.add(now=1.00005, due=1.00004)  # 50 us after the previous: bunched
    log.add(now=1.002, due=1.002)
    taken = log.take()
    assert taken["answers"] == 3
    assert taken["bunched_share"] == pytest.approx(1 / 3)
    assert taken["late_p50_us"] == pytest.approx(10.0)
    assert taken["late_p99_us"] == pytest.approx(100.0)
    assert log.take() == {
        "answers": 0.0,
        "bunched_share": 0.0,
        "late_p50_us": 0.0,
        "late_p99_us": 0.0,
    }


def _chat(port: int, stream: bool) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        body = wrk.chat_body("bench-model", stream=stream)
        conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        return resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("timer", sorted(TIMERS))
def test_delayed_upstream_answers_and_logs_its_answers(procs: Procs, timer: str) -> None:
    up = procs.upstream(delay_ms=5, timer=timer, jitter_ms=1)
    assert upstream_log(up.port)["answers"] == 0
    assert orjson.loads(_chat(up.port, stream=False))["object"] == "chat.completion"
    assert _chat(up.port, stream=True).endswith(b"data: [DONE]\n\n")
    log = upstream_log(up.port)
    assert log["answers"] == 2 and 0.0 <= log["bunched_share"] <= 1.0
    assert upstream_log(up.port)["answers"] == 0  # each read starts a new window


def test_undelayed_upstream_has_no_log_and_answers_health(procs: Procs) -> None:
    up = procs.upstream()
    assert upstream_log(up.port) == {}
    wait_idle(up.port)
