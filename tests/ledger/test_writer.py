"""The background writer: batching off the response path, retries, spilling, replay, shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from headway.clock import FakeClock
from headway.errors import Unavailable
from headway.ledger.record import UsageQuery, UsageRecord
from headway.ledger.spill import SpillDir
from headway.ledger.sqlite import SqliteLedger
from headway.ledger.store import MemoryLedger
from headway.ledger.writer import LedgerWriter
from tests.ledger.conftest import rec


class FlakyLedger(MemoryLedger):
    """A memory ledger that can be taken down, counting the writes it was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.attempts = 0
        self.closed = False

    async def write(self, records: Sequence[UsageRecord]) -> None:
        self.attempts += 1
        if self.down:
            raise Unavailable("ledger is down")
        await super().write(records)

    async def aclose(self) -> None:
        self.closed = True


async def settle() -> None:
    """Let the writer task run its ready steps (no time passes on any clock)."""
    for _ in range(30):
        await asyncio.sleep(0)


def make_writer(ledger: FlakyLedger, clock: FakeClock, tmp_path: Path, **kw: float) -> LedgerWriter:
    opts: dict[str, float] = {"flush_interval": 1.0, "batch_size": 3, "queue_max": 100}
    opts.update(kw)
    return LedgerWriter(ledger, clock, SpillDir(tmp_path / "spill"), **opts)  # type: ignore[arg-type]


async def test_submit_returns_at_once_and_the_interval_flushes(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    ledger = FlakyLedger()
    writer = make_writer(ledger, fake_clock, tmp_path)
    writer.submit(rec(1))
    writer.submit(rec(2))
    await settle()
    assert ledger.records == {} and writer.pending == 2
    await fake_clock.advance(1.0)
    await settle()
    assert set(ledger.records) == {"req_1", "req_2"}
    assert writer.pending == 0 and writer.stats.written == 2
    await writer.aclose()


async def test_a_full_batch_is_written_without_waiting_for_the_interval(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    ledger = FlakyLedger()
    writer = make_writer(ledger, fake_clock, tmp_path)
    for i in range(3):
        writer.submit(rec(i))
    await settle()
    assert len(ledger.records) == 3
    assert ledger.attempts == 1  # one batch, one write
    await writer.aclose()


async def test_failed_writes_are_retried_with_backoff_and_nothing_is_lost(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    ledger = FlakyLedger()
    ledger.down = True
    writer = make_writer(ledger, fake_clock, tmp_path, spill_after=10, retry_base=2.0)
    writer.submit(rec(1))
    await settle()  # the writer task starts and waits for its interval
    await fake_clock.advance(1.0)
    await settle()
    assert ledger.attempts == 1 and writer.pending == 1
    await fake_clock.advance(1.9)  # backoff after one failure is retry_base = 2s
    await settle()
    assert ledger.attempts == 1
    await fake_clock.advance(0.1)
    await settle()
    assert ledger.attempts == 2  # retried, then the next wait doubles to 4s
    ledger.down = False
    await fake_clock.advance(4.0)
    await settle()
    assert set(ledger.records) == {"req_1"} and writer.pending == 0
    assert writer.stats.failures == 2
    await writer.aclose()


async def test_a_long_outage_spills_to_disk_and_replays_once_back(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    ledger = FlakyLedger()
    ledger.down = True
    writer = make_writer(ledger, fake_clock, tmp_path, spill_after=2, retry_base=1.0)
    writer.submit(rec(1))
    writer.submit(rec(2))
    assert await writer.flush() is False
    assert await writer.flush() is False  # second failure in a row: spill
    assert writer.pending == 0 and writer.stats.spilled == 2
    assert list((tmp_path / "spill").glob("*.jsonl"))
    writer.submit(rec(3))
    ledger.down = False
    assert await writer.flush() is True
    assert set(ledger.records) == {"req_1", "req_2", "req_3"}
    assert writer.stats.replayed == 2
    assert not list((tmp_path / "spill").glob("*.jsonl"))
    await writer.aclose()


async def test_a_full_queue_spills_instead_of_dropping(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    ledger = FlakyLedger()
    ledger.down = True
    writer = make_writer(ledger, fake_clock, tmp_path, queue_max=2, batch_size=50)
    for i in range(5):
        writer.submit(rec(i))
    assert writer.pending == 2 and writer.stats.spilled == 3
    ledger.down = False
    assert await writer.flush()
    assert len(ledger.records) == 5
    await writer.aclose()


async def test_close_writes_everything_still_queued(fake_clock: FakeClock, tmp_path: Path) -> None:
    ledger = FlakyLedger()
    writer = make_writer(ledger, fake_clock, tmp_path, batch_size=100)
    for i in range(7):
        writer.submit(rec(i))
    await writer.aclose()
    assert len(ledger.records) == 7 and ledger.closed


async def test_close_while_down_spills_and_the_next_process_replays(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    ledger = FlakyLedger()
    ledger.down = True
    writer = make_writer(ledger, fake_clock, tmp_path, batch_size=100)
    for i in range(4):
        writer.submit(rec(i))
    await writer.aclose()
    assert ledger.records == {} and writer.stats.spilled == 4
    writer.submit(rec(99))  # after close: straight to disk, never dropped
    assert writer.stats.spilled == 5

    # a restarted process pointing at the same spill folder
    fresh = FlakyLedger()
    restarted = make_writer(fresh, fake_clock, tmp_path)
    assert await restarted.flush()
    assert set(fresh.records) == {"req_0", "req_1", "req_2", "req_3", "req_99"}
    await restarted.aclose()


async def test_a_line_cut_short_by_a_crash_is_skipped(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    spill = SpillDir(tmp_path / "spill")
    spill.append([rec(1), rec(2)])
    (pending,) = list((tmp_path / "spill").glob("*.jsonl"))
    with pending.open("ab") as fh:
        fh.write(b'{"request_id": "req_3", "ts": 17')
    ledger = FlakyLedger()
    writer = LedgerWriter(ledger, fake_clock, spill)
    assert await writer.flush()
    assert set(ledger.records) == {"req_1", "req_2"}
    await writer.aclose()


async def test_a_failed_replay_keeps_the_file_for_later(
    fake_clock: FakeClock, tmp_path: Path
) -> None:
    spill = SpillDir(tmp_path / "spill")
    spill.append([rec(1)])
    ledger = FlakyLedger()
    ledger.down = True
    writer = LedgerWriter(ledger, fake_clock, spill, spill_after=100)
    assert await writer.flush() is False
    assert len(list((tmp_path / "spill").glob("*.jsonl"))) == 1
    ledger.down = False
    assert await writer.flush()
    assert set(ledger.records) == {"req_1"}
    assert not list((tmp_path / "spill").glob("*.jsonl"))
    await writer.aclose()


@pytest.mark.parametrize("batch_size", [1, 4])
async def test_records_reach_a_real_sqlite_ledger(
    fake_clock: FakeClock, tmp_path: Path, batch_size: int
) -> None:
    ledger = SqliteLedger(tmp_path / "ledger.db")
    writer = LedgerWriter(ledger, fake_clock, SpillDir(tmp_path / "spill"), batch_size=batch_size)
    for i in range(10):
        writer.submit(rec(i))
    await writer.aclose()
    reader = SqliteLedger(tmp_path / "ledger.db")
    (row,) = await reader.query(UsageQuery(group_by="tenant"))
    assert row.requests == 10 and row.cost_nusd == 10_000
    await reader.aclose()
