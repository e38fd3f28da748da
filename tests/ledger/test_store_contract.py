"""The Ledger contract, run over memory, SQLite and PostgreSQL."""

from __future__ import annotations

from headway.ledger.record import UsageQuery, UsageRow
from headway.ledger.store import Ledger
from tests.ledger.conftest import DAY, JAN1, rec


def by_group(rows: list[UsageRow]) -> dict[str | None, tuple[int, int, int, int]]:
    return {r.group: (r.requests, r.input_tokens, r.output_tokens, r.cost_nusd) for r in rows}


async def test_written_records_are_summed_per_day(ledger: Ledger) -> None:
    await ledger.write([rec(1), rec(2), rec(3, ts=JAN1 + DAY + 5, input_tokens=7)])
    rows = await ledger.query(UsageQuery(group_by="day"))
    assert [r.group for r in rows] == ["2026-01-01", "2026-01-02"]
    assert by_group(rows) == {"2026-01-01": (2, 20, 10, 2000), "2026-01-02": (1, 7, 5, 1000)}


async def test_same_request_id_twice_counts_once(ledger: Ledger) -> None:
    await ledger.write([rec(1), rec(2)])
    await ledger.write([rec(2), rec(3)])  # a retried batch overlapping the first
    await ledger.write([rec(1, input_tokens=999)])  # the first write of an id wins
    rows = await ledger.query(UsageQuery(group_by="tenant"))
    assert by_group(rows) == {"acme": (3, 30, 15, 3000)}


async def test_duplicates_inside_one_batch_count_once(ledger: Ledger) -> None:
    await ledger.write([rec(1), rec(1)])
    rows = await ledger.query(UsageQuery(group_by="tenant"))
    assert by_group(rows)["acme"][0] == 1


async def test_group_by_key_user_team_model_orders_by_cost(ledger: Ledger) -> None:
    await ledger.write(
        [
            rec(1, key_id="key_a", user="ann", team="search", model="sim-large", cost_nusd=10),
            rec(2, key_id="key_b", user="bob", team="ads", model="sim-small", cost_nusd=500),
            rec(3, key_id="key_b", user="ann", team="ads", model="sim-small", cost_nusd=30),
        ]
    )
    keys = await ledger.query(UsageQuery(group_by="key"))
    assert [r.group for r in keys] == ["key_b", "key_a"]
    assert keys[0].requests == 2 and keys[0].cost_nusd == 530
    users = await ledger.query(UsageQuery(group_by="user"))
    assert by_group(users) == {"bob": (1, 10, 5, 500), "ann": (2, 20, 10, 40)}
    assert [r.group for r in users] == ["bob", "ann"]
    teams = await ledger.query(UsageQuery(group_by="team"))
    assert [(r.group, r.cost_nusd) for r in teams] == [("ads", 530), ("search", 10)]
    models = await ledger.query(UsageQuery(group_by="model"))
    assert [(r.group, r.requests) for r in models] == [("sim-small", 2), ("sim-large", 1)]


async def test_missing_group_values_form_their_own_row_last(ledger: Ledger) -> None:
    await ledger.write([rec(1, key_id=None, cost_nusd=5), rec(2, key_id="key_a", cost_nusd=5)])
    rows = await ledger.query(UsageQuery(group_by="key"))
    assert [r.group for r in rows] == ["key_a", None]


async def test_since_is_inclusive_and_until_exclusive(ledger: Ledger) -> None:
    await ledger.write([rec(0), rec(10), rec(20)])
    rows = await ledger.query(UsageQuery(group_by="tenant", since=JAN1 + 10, until=JAN1 + 20))
    assert by_group(rows)["acme"][0] == 1
    assert await ledger.query(UsageQuery(group_by="tenant", since=JAN1 + 21)) == []


async def test_filters_combine(ledger: Ledger) -> None:
    await ledger.write(
        [
            rec(1, tenant="acme", key_id="key_a", model="m1"),
            rec(2, tenant="acme", key_id="key_b", model="m1"),
            rec(3, tenant="globex", key_id="key_a", model="m1"),
            rec(4, tenant="acme", key_id="key_a", model="m2"),
        ]
    )
    rows = await ledger.query(UsageQuery(group_by="model", tenant="acme", key_id="key_a"))
    assert by_group(rows) == {"m1": (1, 10, 5, 1000), "m2": (1, 10, 5, 1000)}
    rows = await ledger.query(UsageQuery(group_by="day", user="nobody"))
    assert rows == []


async def test_limit_caps_rows(ledger: Ledger) -> None:
    await ledger.write([rec(i, key_id=f"key_{i}", cost_nusd=i) for i in range(5)])
    rows = await ledger.query(UsageQuery(group_by="key", limit=2))
    assert [r.group for r in rows] == ["key_4", "key_3"]


async def test_large_costs_and_tokens_sum_exactly(ledger: Ledger) -> None:
    big = 3_000_000_000_000  # $3000 in nano-dollars: past 32-bit, exact in 64-bit
    await ledger.write([rec(1, cost_nusd=big, input_tokens=2**31), rec(2, cost_nusd=1)])
    (row,) = await ledger.query(UsageQuery(group_by="tenant"))
    assert row.cost_nusd == big + 1
    assert row.input_tokens == 2**31 + 10


async def test_empty_write_is_a_no_op(ledger: Ledger) -> None:
    await ledger.write([])
    assert await ledger.query(UsageQuery()) == []
