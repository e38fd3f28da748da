"""Getting usage records into the ledger without slowing calls down and without losing any.

`submit` only appends to an in-memory queue. A background task writes batches: as soon as one
fills, or every `flush_interval` seconds. A failed write is retried with backoff, the records
staying queued; after `spill_after` failures in a row (or when the queue is full) records go to
the spill folder, which is replayed once the database answers again. `aclose` writes everything
still queued, or spills it. What a hard crash can lose is at most `flush_interval` seconds of
records that never reached the queue's flush.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any

from headway.clock import Clock
from headway.errors import Unavailable
from headway.ledger.record import UsageRecord
from headway.ledger.spill import SpillDir
from headway.ledger.store import Ledger

log = logging.getLogger("headway.ledger")


@dataclass(slots=True)
class WriterStats:
    submitted: int = 0
    written: int = 0
    spilled: int = 0
    replayed: int = 0
    failures: int = 0


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "the ledger writer stopped; records now wait in memory and the spill folder",
            exc_info=task.exception(),
        )


class LedgerWriter:
    def __init__(
        self,
        ledger: Ledger,
        clock: Clock,
        spill: SpillDir,
        *,
        flush_interval: float = 0.5,
        batch_size: int = 500,
        queue_max: int = 50_000,
        retry_base: float = 0.5,
        retry_max: float = 30.0,
        spill_after: int = 3,
    ) -> None:
        self.ledger = ledger
        self.spill = spill
        self.stats = WriterStats()
        self._clock = clock
        self._interval = flush_interval
        self._batch = batch_size
        self._queue_max = queue_max
        self._retry_base = retry_base
        self._retry_max = retry_max
        self._spill_after = spill_after
        self._queue: deque[UsageRecord] = deque()
        self._failures = 0
        #: spilled files may exist (checked at start, set by every spill)
        self._maybe_spilled = True
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._queue)

    # ---- the response path ----------------------------------------------------------------

    def submit(self, record: UsageRecord) -> None:
        """Queue a record; never blocks, never raises for a database problem."""
        self.stats.submitted += 1
        if self._closed or len(self._queue) >= self._queue_max:
            # the queue is full only while the database is down: keep the record on disk
            self._spill([record])
            return
        self._queue.append(record)
        if self._task is None:
            self._start()
        if len(self._queue) >= self._batch and self._wake is not None and self._failures == 0:
            self._wake.set()

    # ---- the background task --------------------------------------------------------------

    def _start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the first submit made inside one starts the task
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task = loop.create_task(self._run(), name="headway-ledger-writer")
        self._task.add_done_callback(_report_crash)

    async def start(self) -> None:
        if self._task is None and not self._closed:
            self._start()

    async def _run(self) -> None:
        while True:
            delay = self._interval if self._failures == 0 else self._backoff()
            await self._wait(delay, wake_on_batch=self._failures == 0)
            await self.flush()

    def _backoff(self) -> float:
        return min(self._retry_max, self._retry_base * 2.0 ** (self._failures - 1))

    async def _wait(self, seconds: float, *, wake_on_batch: bool) -> None:
        assert self._wake is not None
        self._wake.clear()
        if wake_on_batch and len(self._queue) >= self._batch:
            return
        waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._clock.sleep(seconds))}
        if wake_on_batch:
            waiters.add(asyncio.ensure_future(self._wake.wait()))
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    async def flush(self) -> bool:
        """Write what is queued (and replay spilled files) now. False when the database failed."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            try:
                if self._maybe_spilled:
                    await self._replay()
                while self._queue:
                    batch = [self._queue[i] for i in range(min(self._batch, len(self._queue)))]
                    await self.ledger.write(batch)
                    for _ in batch:
                        self._queue.popleft()
                    self.stats.written += len(batch)
            except Unavailable as exc:
                self._failures += 1
                self.stats.failures += 1
                log.warning("ledger write failed (%d in a row): %s", self._failures, exc)
                if self._failures >= self._spill_after or self._closed:
                    self._spill_queue()
                return False
            self._failures = 0
            return True

    async def _replay(self) -> None:
        files = self.spill.claim()
        for path in files:
            records = self.spill.read(path)
            for i in range(0, len(records), self._batch):
                await self.ledger.write(records[i : i + self._batch])
            self.spill.done(path)
            self.stats.replayed += len(records)
        self._maybe_spilled = False

    def _spill(self, records: list[UsageRecord]) -> None:
        try:
            self.stats.spilled += self.spill.append(records)
            self._maybe_spilled = True
        except OSError:
            # the disk failed too; nothing is left to try, so say so loudly
            log.exception("LOST %d ledger records: cannot write spill folder", len(records))

    def _spill_queue(self) -> None:
        records = list(self._queue)
        self._queue.clear()
        self._spill(records)

    async def aclose(self) -> None:
        """Stop the task and store everything still queued: in the database, else on disk."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        if self._queue or self._maybe_spilled:
            await self.flush()
        await self.ledger.aclose()
