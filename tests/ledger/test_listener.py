"""`call.settled` events become ledger rows, once per Services."""

from __future__ import annotations

from pathlib import Path

import pytest

from headway.clock import FakeClock
from headway.config.load import load
from headway.config.runtime import RuntimeConfig
from headway.context import Call, Principal
from headway.errors import ConfigError
from headway.ledger.listener import install, open_ledger, record_for, spill_dir
from headway.ledger.record import UsageQuery
from headway.ledger.writer import LedgerWriter
from headway.services import Services
from headway.types import ChatRequest, Message, Usage


def runtime(tmp_path: Path, extra: str = "") -> RuntimeConfig:
    return load(text=f"ledger:\n  sqlite_path: {tmp_path / 'h.db'}\n{extra}", env={})


def call(request_id: str = "req_x", **principal: str) -> Call:
    req = ChatRequest(model="default", messages=(Message("user", "hi"),), user="end-user")
    c = Call(request=req, principal=Principal(**principal), request_id=request_id)  # type: ignore[arg-type]
    c.served.route = "default"
    c.served.deployment = "sim-small"
    c.served.cache = "miss"
    return c


def test_record_takes_who_from_the_principal_and_what_from_the_call() -> None:
    c = call(tenant="acme", user="ann", team="search", key_id="key_1")
    r = record_for(c, Usage(12, 3, cached_input_tokens=4), 0.00123, "sim-large", now=1000.0)
    assert (r.request_id, r.tenant, r.key_id, r.user, r.team) == (
        "req_x",
        "acme",
        "key_1",
        "ann",
        "search",
    )
    assert (r.route, r.model, r.cache) == ("default", "sim-large", "miss")
    assert (r.input_tokens, r.output_tokens, r.cached_input_tokens) == (12, 3, 4)
    assert r.cost_nusd == 1_230_000 and r.ts == 1000.0


def test_record_falls_back_to_what_was_served() -> None:
    c = call()
    c.served.usage = Usage(7, 1)
    c.served.cost_usd = 0.5
    r = record_for(c, None, None, None, now=1.0)
    assert (r.model, r.input_tokens, r.cost_nusd) == ("sim-small", 7, 500_000_000)
    assert r.user == "end-user" and r.tenant == "default" and r.key_id is None


async def test_settled_calls_reach_the_database(fake_clock: FakeClock, tmp_path: Path) -> None:
    services = Services(clock=fake_clock)
    rt = runtime(tmp_path)
    writer = install(rt, services)
    assert isinstance(writer, LedgerWriter)
    assert install(rt, services) is writer  # a reload does not subscribe twice
    for i in range(3):
        services.events.emit(
            "call.settled",
            call=call(f"req_{i}", key_id="key_1"),
            usage=Usage(10, 2),
            cost_usd=0.001,
            deployment="sim-small",
        )
    services.events.emit("call.settled", call="not a call")  # ignored, never raises
    assert writer.pending == 3
    await services.aclose()  # flushes on shutdown
    reader = open_ledger(rt.file)
    (row,) = await reader.query(UsageQuery(group_by="key"))
    assert (row.group, row.requests, row.input_tokens, row.cost_nusd) == (
        "key_1",
        3,
        30,
        3_000_000,
    )
    await reader.aclose()


def test_disabled_ledger_installs_nothing(tmp_path: Path) -> None:
    services = Services()
    assert install(runtime(tmp_path, "  enabled: false\n"), services) is None
    assert not services.events.wants("call.settled")


def test_postgres_backend_needs_a_url(tmp_path: Path) -> None:
    rt = runtime(tmp_path, "  backend: postgres\n")
    with pytest.raises(ConfigError) as info:
        open_ledger(rt.file)
    assert info.value.path == "ledger.postgres_url"


def test_spill_folder_defaults_next_to_the_sqlite_file(tmp_path: Path) -> None:
    assert spill_dir(runtime(tmp_path).file) == Path(str(tmp_path / "h.db") + ".spill")
    custom = runtime(tmp_path, f"  spill_dir: {tmp_path / 'x'}\n")
    assert spill_dir(custom.file) == tmp_path / "x"


async def test_the_postgres_ledger_is_wired_from_config(postgres_dsn: str, tmp_path: Path) -> None:
    rt = runtime(tmp_path, f"  backend: postgres\n  postgres_url: {postgres_dsn}\n")
    services = Services()
    writer = install(rt, services)
    assert writer is not None
    call_id = f"req_pg_{tmp_path.name}"
    services.events.emit(
        "call.settled",
        call=call(call_id, tenant="pgwired"),
        usage=Usage(3, 4),
        cost_usd=0.25,
        deployment="sim-small",
    )
    await services.aclose()
    reader = open_ledger(rt.file)
    rows = await reader.query(UsageQuery(group_by="model", tenant="pgwired"))
    await reader.aclose()
    assert [(r.group, r.requests, r.output_tokens, r.cost_nusd) for r in rows] == [
        ("sim-small", 1, 4, 250_000_000)
    ]
