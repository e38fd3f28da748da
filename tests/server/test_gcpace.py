"""`GcPacer`: young generations collected on the loop's clock, full collections only after the
check interval and a quarter's growth. Driven with a scripted loop and a recording `gc`, so no
collection or timer really runs."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest

from headway.server import gcpace
from headway.server.gcpace import AUTO_THRESHOLD, FULL_CHECK_S, TICK_S, GcPacer


class ScriptedLoop:
    """`time()` and `call_later()` as the pacer uses them; callbacks run when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.scheduled: list[tuple[float, Callable[[], None]]] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        self.scheduled.append((delay, callback))

    def run_next(self, advance: float) -> None:
        self.now += advance
        _, callback = self.scheduled.pop(0)
        callback()


class RecordingGc:
    def __init__(self, oldest: int) -> None:
        self.oldest = oldest  # objects in the oldest generation
        self.collected: list[int] = []
        self.threshold: tuple[int, ...] = ()

    def collect(self, generation: int = 2) -> int:
        self.collected.append(generation)
        return 0

    def get_objects(self, generation: int) -> list[object]:
        assert generation == 2
        return [None] * self.oldest

    def set_threshold(self, *threshold: int) -> None:
        self.threshold = threshold


@pytest.fixture
def fake_gc(monkeypatch: pytest.MonkeyPatch) -> RecordingGc:
    recording = RecordingGc(oldest=100_000)
    monkeypatch.setattr(gcpace, "gc", recording)
    return recording


def started(fake_gc: RecordingGc) -> tuple[GcPacer, ScriptedLoop]:
    loop = ScriptedLoop()
    pacer = GcPacer(loop)  # type: ignore[arg-type]
    pacer.start()
    return pacer, loop


def test_start_keeps_the_automatic_collector_for_the_young_generation_only(
    fake_gc: RecordingGc,
) -> None:
    _, loop = started(fake_gc)
    assert fake_gc.threshold == AUTO_THRESHOLD
    assert [delay for delay, _ in loop.scheduled] == [TICK_S]
    assert fake_gc.collected == []


def test_every_tick_collects_the_young_generations_and_schedules_the_next(
    fake_gc: RecordingGc,
) -> None:
    _, loop = started(fake_gc)
    for _ in range(5):
        loop.run_next(TICK_S)
    assert fake_gc.collected == [1] * 5
    assert [delay for delay, _ in loop.scheduled] == [TICK_S]


def test_growth_alone_does_not_collect_everything_before_the_check(fake_gc: RecordingGc) -> None:
    _, loop = started(fake_gc)
    fake_gc.oldest = 1_000_000
    loop.run_next(FULL_CHECK_S - 1.0)
    assert fake_gc.collected == [1]


def test_a_full_collection_needs_a_quarter_of_growth_at_the_check(fake_gc: RecordingGc) -> None:
    _, loop = started(fake_gc)
    fake_gc.oldest = 120_000  # +20 %: not yet
    loop.run_next(FULL_CHECK_S)
    assert fake_gc.collected == [1]
    fake_gc.oldest = 130_000  # +30 %, but the next check is a whole interval later
    loop.run_next(TICK_S)
    assert fake_gc.collected == [1, 1]
    loop.run_next(FULL_CHECK_S)
    assert fake_gc.collected == [1, 1, 2]
    # the base is now the size after that collection: no second one at the next check
    loop.run_next(FULL_CHECK_S)
    assert fake_gc.collected == [1, 1, 2, 1]


def test_a_small_heap_needs_thousands_of_objects_of_growth(fake_gc: RecordingGc) -> None:
    fake_gc.oldest = 100
    _, loop = started(fake_gc)
    fake_gc.oldest = 5_000  # 50x, but only a few thousand objects
    loop.run_next(FULL_CHECK_S)
    assert fake_gc.collected == [1]
    fake_gc.oldest = 10_200
    loop.run_next(FULL_CHECK_S)
    assert fake_gc.collected == [1, 2]


def test_the_real_collector_accepts_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(*AUTO_THRESHOLD)
        assert gc.get_threshold() == AUTO_THRESHOLD
    finally:
        gc.set_threshold(*before)
