"""Wiring the ledger into a gateway: every `call.settled` event becomes one usage record.

The limits/budgets stage emits `call.settled` (call=, usage=, cost_usd=, deployment=) once a
call's real usage is known; with limits and budgets off, its settle-only mode does
(headway.limits.settle_only, which also says how cache hits count). The listener turns each
event into a `UsageRecord` and queues it; the `LedgerWriter` stores it off the response path.
The Gateway installs the listener when it is built; the server's admin API reuses that writer.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from headway.clock import Clock
from headway.config.runtime import RuntimeConfig
from headway.config.schema import ConfigFile
from headway.context import Call
from headway.errors import ConfigError
from headway.ledger.record import UsageRecord, to_nano_usd
from headway.ledger.spill import SpillDir
from headway.ledger.store import Ledger, MemoryLedger
from headway.ledger.writer import LedgerWriter
from headway.observe.events import Event
from headway.services import Services
from headway.types import Usage

EXTRA = "ledger"
EVENT = "call.settled"


#: how many calls a memory ledger keeps (the newest), so a long-lived process stays bounded
MEMORY_MAX_RECORDS = 100_000


def open_ledger(cfg: ConfigFile) -> Ledger:
    section = cfg.ledger
    if section.backend == "memory":
        return MemoryLedger(MEMORY_MAX_RECORDS)
    if section.backend == "postgres":
        if not section.postgres_url:
            raise ConfigError("ledger.postgres_url", "required when ledger.backend is postgres")
        from headway.ledger.postgres import PostgresLedger

        return PostgresLedger(section.postgres_url)
    from headway.ledger.sqlite import SqliteLedger

    return SqliteLedger(section.sqlite_path)


def spill_dir(cfg: ConfigFile) -> Path:
    section = cfg.ledger
    if section.spill_dir:
        return Path(section.spill_dir)
    if section.backend == "sqlite":
        return Path(section.sqlite_path + ".spill")
    if section.backend == "memory":
        # a memory ledger never fails a write; only records submitted after close could spill,
        # and they must not land in the working directory
        return Path(tempfile.gettempdir()) / f"headway-ledger-{os.getpid()}-{id(cfg)}.spill"
    return Path("headway-ledger.spill")


def build_writer(cfg: ConfigFile, clock: Clock, ledger: Ledger | None = None) -> LedgerWriter:
    section = cfg.ledger
    return LedgerWriter(
        ledger if ledger is not None else open_ledger(cfg),
        clock,
        SpillDir(spill_dir(cfg)),
        flush_interval=section.flush_interval_s,
        batch_size=section.batch_size,
        queue_max=section.queue_max,
    )


def record_for(
    call: Call, usage: Usage | None, cost_usd: Any, deployment: str | None, now: float
) -> UsageRecord:
    p = call.principal
    served = call.served
    usage = usage or served.usage or Usage()
    return UsageRecord(
        request_id=call.request_id,
        ts=now,
        tenant=p.tenant,
        key_id=p.key_id,
        user=p.user or call.request.user,
        team=p.team,
        route=served.route or call.request.model,
        model=deployment or served.deployment or call.request.model,
        cache=served.cache,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        cost_nusd=to_nano_usd(cost_usd if cost_usd is not None else served.cost_usd),
    )


class LedgerListener:
    def __init__(self, writer: LedgerWriter, clock: Clock) -> None:
        self.writer = writer
        self._clock = clock

    def __call__(self, event: Event) -> None:
        data = event.data
        call = data.get("call")
        if not isinstance(call, Call):
            return
        self.writer.submit(
            record_for(
                call,
                data.get("usage"),
                data.get("cost_usd"),
                data.get("deployment"),
                self._clock.time(),
            )
        )


def install(runtime: RuntimeConfig, services: Services) -> LedgerWriter | None:
    """Subscribe the ledger to `call.settled` once per Services (idempotent across reloads).
    The writer is kept in `services.extras["ledger"]`, so `Services.aclose` flushes it."""
    if not runtime.file.ledger.enabled:
        return None
    existing = services.extras.get(EXTRA)
    if isinstance(existing, LedgerWriter):
        return existing
    writer = build_writer(runtime.file, services.clock)
    services.events.subscribe(EVENT, LedgerListener(writer, services.clock))
    services.extras[EXTRA] = writer
    return writer
