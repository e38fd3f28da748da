"""Spend is recorded with the default config (limits and budgets off): the settle-only stage
prices every call and the Gateway's own ledger listener stores it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from headway.config.load import default_config_text, load
from headway.context import Call
from headway.errors import InvalidRequest, UpstreamError
from headway.gateway import Gateway
from headway.ledger.listener import install
from headway.ledger.record import UsageRecord
from headway.ledger.store import MemoryLedger
from headway.ledger.writer import LedgerWriter
from headway.types import ChatRequest, Message, Usage
from tests.stubs import StubProvider

HI = [{"role": "user", "content": "say something"}]


def default_gateway(extra: str = "", **kw: object) -> Gateway:
    """The embedded default config as shipped, with the sim answering at once."""
    raw = yaml.safe_load(default_config_text())
    raw["providers"]["sim"]["sim"] = {
        "latency_p50_ms": 0,
        "latency_p99_ms": 0,
        "ttft_p50_ms": 0,
        "ms_per_token": 0,
    }
    text = yaml.safe_dump(raw) + extra
    return Gateway(load(text=text, env={}), **kw)  # type: ignore[arg-type]


def writer_of(gw: Gateway) -> LedgerWriter:
    writer = gw.services.extras["ledger"]
    assert isinstance(writer, LedgerWriter)
    return writer


async def records(gw: Gateway) -> dict[str, UsageRecord]:
    writer = writer_of(gw)
    await writer.flush()
    assert isinstance(writer.ledger, MemoryLedger)
    return dict(writer.ledger.records)


def nano(usage: Usage, input_price: str, output_price: str) -> int:
    """Cost in nano-dollars of `usage` at per-1M-token prices (1 USD/1M = 1000 nUSD/token)."""
    per_in = int(float(input_price) * 1000)
    per_out = int(float(output_price) * 1000)
    return usage.input_tokens * per_in + usage.output_tokens * per_out


async def test_default_config_records_a_chat_and_a_stream_exactly() -> None:
    async with default_gateway() as gw:
        assert gw.runtime.file.limits.enabled is False and gw.runtime.file.budgets.enabled is False
        assert gw.runtime.file.ledger.backend == "memory"  # no `ledger:` section: in memory
        chat = Call(ChatRequest(model="default", messages=(Message("user", "say something"),)))
        reply = await gw.chat(call=chat)
        streamed = Call(
            ChatRequest(model="default", messages=(Message("user", "tell me more"),), stream=True)
        )
        chunks = [c async for c in gw.stream(call=streamed)]
        rows = await records(gw)
    final = chunks[-1].usage
    assert reply.usage is not None and final is not None
    assert set(rows) == {chat.request_id, streamed.request_id}
    for call, usage in ((chat, reply.usage), (streamed, final)):
        row = rows[call.request_id]
        assert (row.route, row.model, row.cache) == ("default", "sim-large", "off")
        assert (row.input_tokens, row.output_tokens) == (usage.input_tokens, usage.output_tokens)
        assert row.cost_nusd == nano(usage, "2.50", "10.00") > 0  # sim-large's prices
        assert call.served.cost_usd == pytest.approx(row.cost_nusd / 1e9)


async def test_usage_sums_what_was_recorded() -> None:
    async with default_gateway() as gw:
        for _ in range(3):
            await gw.chat(model="sim-small", messages=HI)
        (row,) = await gw.usage(group_by="model")
        assert (row.group, row.requests) == ("sim-small", 3)
        assert row.cost_nusd == nano(Usage(row.input_tokens, row.output_tokens), "0.15", "0.60")


async def test_a_stream_the_caller_leaves_is_settled_before_aclose_returns() -> None:
    async with default_gateway() as gw:
        call = Call(ChatRequest(model="sim-large", messages=(Message("user", "x"),), stream=True))
        stream = gw.stream(call=call)
        first = [await anext(stream) for _ in range(2)]
        await stream.aclose()  # type: ignore[attr-defined]  # it is an async generator
        assert writer_of(gw).pending == 1  # settled on close, not whenever GC gets to it
        (row,) = (await records(gw)).values()
    streamed = "".join(c.text for c in first)
    assert row.request_id == call.request_id and row.output_tokens >= 1 and streamed
    assert row.input_tokens > 0 and row.cost_nusd > 0  # the input estimate, charged


async def test_a_failed_call_is_one_row_with_nothing_used() -> None:
    down = StubProvider("sim-large", fail=UpstreamError("down"))
    also = StubProvider("sim-small", fail=UpstreamError("down"))
    async with default_gateway(providers={"sim-large": down, "sim-small": also}) as gw:
        call = Call(ChatRequest(model="default", messages=(Message("user", "x"),)))
        with pytest.raises(UpstreamError):
            await gw.chat(call=call)
        (row,) = (await records(gw)).values()
    assert (row.input_tokens, row.output_tokens, row.cost_nusd) == (0, 0, 0)


async def test_gateway_installs_the_ledger_once_and_the_server_reuses_it(tmp_path: Path) -> None:
    async with default_gateway() as gw:
        writer = writer_of(gw)
        await gw.reload(gw.runtime)
        assert install(gw.runtime, gw.services) is writer  # what server.admin does: no-op
        await gw.chat(model="sim-small", messages=HI)
        assert len(await records(gw)) == 1  # one listener: one row, however many installs


async def test_a_disabled_ledger_records_nothing() -> None:
    async with default_gateway("ledger: {enabled: false}\n") as gw:
        assert "ledger" not in gw.services.extras
        await gw.chat(model="sim-small", messages=HI)
        with pytest.raises(InvalidRequest):
            await gw.usage()


async def test_a_library_gateway_writes_no_file_it_was_not_told_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stubs = {"sim-large": StubProvider("sim-large"), "sim-small": StubProvider("sim-small")}
    async with Gateway(providers=stubs) as gw:  # the embedded default, as a library user has it
        await gw.chat(model="default", messages=HI)
        assert [r.requests for r in await gw.usage()] == [1]
    assert os.listdir(tmp_path) == []


async def test_served_as_headway_serve_the_default_ledger_is_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    stubs = {"sim-large": StubProvider("sim-large"), "sim-small": StubProvider("sim-small")}
    async with Gateway(providers=stubs, ledger_default="sqlite") as gw:
        await gw.chat(model="default", messages=HI)
        assert [r.requests for r in await gw.usage()] == [1]
    assert (tmp_path / "headway.db").exists()


async def test_a_named_sqlite_file_is_honoured(tmp_path: Path) -> None:
    db = tmp_path / "spend.db"
    async with default_gateway(f"ledger: {{sqlite_path: '{db}'}}\n") as gw:
        await gw.chat(model="sim-small", messages=HI)
        assert [r.requests for r in await gw.usage(group_by="route")] == [1]
    assert db.exists()
