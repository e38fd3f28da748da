"""`headway usage` reads the configured ledger and prints a table with totals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from headway.cli import main
from headway.ledger.sqlite import SqliteLedger
from tests.ledger.conftest import DAY, rec


@pytest.fixture
def config(tmp_path: Path) -> str:
    async def fill() -> None:
        ledger = SqliteLedger(tmp_path / "h.db")
        await ledger.write(
            [
                rec(1, key_id="key_a", cost_nusd=2_000_000),
                rec(2, key_id="key_a", cost_nusd=2_000_000),
                rec(3, key_id="key_b", cost_nusd=500_000, model="sim-small"),
                rec(4, key_id="key_b", ts=rec(4).ts + DAY, cost_nusd=1),
            ]
        )
        await ledger.aclose()

    asyncio.run(fill())
    path = tmp_path / "headway.yaml"
    path.write_text(f"ledger:\n  sqlite_path: {tmp_path / 'h.db'}\n", encoding="utf-8")
    return str(path)


def test_usage_by_key_is_a_table_with_a_total(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["usage", "--config", config, "--group-by", "key"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["KEY", "REQUESTS", "INPUT", "OUTPUT", "CACHED", "COST_USD"]
    assert lines[2].split() == ["key_a", "2", "20", "10", "0", "0.004000"]
    assert lines[3].split() == ["key_b", "2", "20", "10", "0", "0.000500"]
    assert lines[-1].split() == ["TOTAL", "4", "40", "20", "0", "0.004500"]


def test_usage_by_day_within_bounds_as_json(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["usage", "-c", config, "-g", "day", "--since", "2026-01-02", "--json"]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [
        {
            "day": "2026-01-02",
            "requests": 1,
            "input_tokens": 10,
            "output_tokens": 5,
            "cached_input_tokens": 0,
            "total_tokens": 15,
            "cost_usd": 1e-09,
        }
    ]


def test_usage_filters_and_bad_bounds(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["usage", "-c", config, "-g", "model", "--key", "key_b", "--until", "2026-01-01"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[2].split()[:2] == ["sim-small", "1"]
    assert main(["usage", "-c", config, "--since", "soon"]) == 1
    assert "since" in capsys.readouterr().err
    assert main(["usage", "-c", config, "--since", "2030-01-01"]) == 0
    assert "no usage" in capsys.readouterr().out
