"""Window arithmetic (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from headway.limits import window as w


def test_a_bucket_drains_at_limit_per_period() -> None:
    assert w.drain(10.0, 100.0, 130.0, 10, 60.0) == pytest.approx(5.0)
    assert w.drain(10.0, 100.0, 1000.0, 10, 60.0) == 0.0
    assert w.drain(10.0, 100.0, 90.0, 10, 60.0) == 10.0  # a clock that went back drains nothing


def test_bucket_wait() -> None:
    assert w.bucket_wait(0.0, 10, 10, 60.0) == 0.0
    assert w.bucket_wait(8.0, 4, 10, 60.0) == pytest.approx(12.0)
    assert w.bucket_wait(0.0, 11, 10, 60.0) is None
    assert w.bucket_ttl(5.0, 10, 60.0) == pytest.approx(30.0)


def test_fixed_windows_are_epoch_aligned() -> None:
    now = 1_767_225_600.0 + 3 * 3600 + 120  # 2026-01-01T03:02:00Z
    assert w.window_reset(now, 3600.0) == pytest.approx(3480.0)
    assert w.window_reset(now, 86400.0) == pytest.approx(86400 - 3 * 3600 - 120)
    assert w.window_reset(now, 0.0) is None
    assert w.window_wait(100.0, 1, 100, now, 0.0) is None
    assert w.window_wait(99.0, 1, 100, now, 3600.0) == 0.0
    assert w.window_wait(100.0, 1, 100, now, 3600.0) == pytest.approx(3480.0)


@pytest.mark.parametrize(
    "iso",
    [
        "1970-01-01T00:00:00",
        "2000-02-29T12:00:00",
        "2024-02-29T23:59:59",
        "2025-12-31T23:59:59",
        "2026-03-15T08:00:00",
        "2099-12-31T00:00:00",
    ],
)
def test_calendar_months_match_the_standard_library(iso: str) -> None:
    when = dt.datetime.fromisoformat(iso).replace(tzinfo=dt.UTC)
    now = when.timestamp()
    assert w.window_index(now, w.MONTH) == when.year * 12 + when.month - 1
    year, month = (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
    first_next = dt.datetime(year, month, 1, tzinfo=dt.UTC).timestamp()
    assert w.window_reset(now, w.MONTH) == pytest.approx(first_next - now)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.012, "12ms"),
        (0.0, "0ms"),
        (1.5, "1.5s"),
        (6.0, "6s"),
        (360.0, "6m0s"),
        (3723.25, "1h2m3.25s"),
    ],
)
def test_reset_durations_in_openai_format(seconds: float, text: str) -> None:
    assert w.go_duration(seconds) == text


def test_reset_after_per_kind() -> None:
    assert w.reset_after("bucket", 5.0, 10, 60.0, 0.0) == pytest.approx(30.0)
    assert w.reset_after("window", 1.0, 10, 3600.0, 1800.0) == pytest.approx(1800.0)
    assert w.reset_after("concurrency", 1.0, 10, 60.0, 0.0) == 0.0
