"""`headway keys create|list|revoke` against the configured SQLite database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from headway.cli import main
from headway.keys.model import ApiKey, hash_key
from headway.keys.sqlite import SqliteKeyStore


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "headway.yaml"
    path.write_text(f"ledger:\n  sqlite_path: {tmp_path / 'h.db'}\n", encoding="utf-8")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_create_prints_the_key_once_and_stores_only_its_hash(
    config: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        *("keys", "create", "--config", config, "--tenant", "acme", "--user", "ann"),
        *("--models", "sim-small, sim-large", "--limit", "rpm=60", "--budget", "usd_per_day=2.5"),
    )
    assert code == 0
    token = next(w for w in out.split() if w.startswith("hw-"))
    assert "will not be shown again" in out

    async def read() -> tuple[ApiKey | None, bytes]:
        store = SqliteKeyStore(tmp_path / "h.db")
        key = await store.by_hash(hash_key(token))
        await store.aclose()
        return key, (tmp_path / "h.db").read_bytes()

    key, raw = asyncio.run(read())
    assert key is not None
    assert key.allowed_models == ("sim-small", "sim-large")
    assert key.limits == {"rpm": 60} and key.budgets == {"usd_per_day": 2.5}
    assert token.encode() not in raw  # the plaintext never reaches the database


def test_list_shows_a_table_and_revoke_hides_the_key(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run(capsys, "keys", "create", "--config", config, "--name", "first", "--team", "ads")
    code, out, _ = run(capsys, "keys", "create", "--config", config, "--name", "second", "--json")
    assert code == 0
    second = json.loads(out)
    code, out, _ = run(capsys, "keys", "list", "--config", config)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["ID", "PREFIX", "NAME"]
    assert set(lines[1]) <= {"-", " "}
    assert any("first" in line and "ads" in line and "active" in line for line in lines[2:])
    assert second["key"] not in out  # listing never shows plaintext

    code, out, _ = run(capsys, "keys", "revoke", "--config", config, second["id"])
    assert code == 0 and second["id"] in out
    _, out, _ = run(capsys, "keys", "list", "--config", config)
    assert second["id"] not in out
    _, out, _ = run(capsys, "keys", "list", "--config", config, "--all", "--json")
    states = {k["id"]: k["status"] for k in json.loads(out)}
    assert states[second["id"]] == "revoked"


def test_errors_exit_non_zero_with_a_message(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "keys", "revoke", "--config", config, "key_missing")
    assert code == 1 and "key_missing" in err
    code, _, err = run(capsys, "keys", "create", "--config", config, "--limit", "rph=5")
    assert code == 1 and "limits.rph" in err
    code, _, err = run(capsys, "keys", "create", "--config", config, "--limit", "rpm")
    assert code == 1 and "NAME=NUMBER" in err
    code, _, err = run(capsys, "keys", "list", "--config", config + ".missing")
    assert code == 2 and "config error" in err


def test_an_empty_store_says_so(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "keys", "list", "--config", config)
    assert code == 0 and out.strip() == "no keys"
