"""Query parameters and bounds: what the admin API and CLI accept."""

from __future__ import annotations

import pytest

from headway.errors import InvalidRequest
from headway.ledger.record import build_query, day_of, parse_bound, to_nano_usd
from tests.ledger.conftest import DAY, JAN1


def test_dates_are_utc_days_and_until_covers_its_whole_day() -> None:
    assert parse_bound("2026-01-01", name="since", end=False) == JAN1
    assert parse_bound("2026-01-01", name="until", end=True) == JAN1 + DAY
    assert parse_bound("2026-01-01T06:00:00Z", name="since", end=False) == JAN1 + 6 * 3600
    assert parse_bound("2026-01-01T06:00:00", name="since", end=False) == JAN1 + 6 * 3600
    assert parse_bound(str(JAN1), name="since", end=False) == JAN1
    assert parse_bound(None, name="since", end=False) is None


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "-5", "nan"])
def test_bad_bounds_name_the_parameter(bad: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_bound(bad, name="since", end=False)
    assert info.value.param == "since"


def test_build_query_reads_every_parameter() -> None:
    q = build_query(
        {
            "group_by": "team",
            "since": "2026-01-01",
            "until": "2026-01-02",
            "key": "key_1",
            "user": "ann",
            "model": "m",
            "limit": "5",
        }
    )
    assert (q.group_by, q.since, q.until, q.key_id, q.user, q.model, q.limit) == (
        "team",
        JAN1,
        JAN1 + 2 * DAY,
        "key_1",
        "ann",
        "m",
        5,
    )
    assert build_query({}).group_by == "day"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "colour"}, "group_by"),
        ({"since": "2026-02-01", "until": "2026-01-01"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"sort": "x"}, "sort"),
    ],
)
def test_build_query_rejects_bad_input(params: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        build_query(params)
    assert info.value.param == param


def test_costs_become_exact_nano_dollars() -> None:
    assert to_nano_usd(0.1) + to_nano_usd(0.2) == to_nano_usd(0.3)
    assert to_nano_usd(None) == 0
    assert to_nano_usd(1.5e-7) == 150
    assert day_of(JAN1 + DAY - 1) == "2026-01-01"
