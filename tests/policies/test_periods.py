"""Budget periods are calendar windows in UTC; weeks start on Monday."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from policies.budgets import window_of


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def iso(unix: int | None) -> str:
    assert unix is not None
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(
    ("period", "now", "start", "end", "label"),
    [
        ("day", "2031-03-09 23:59:59", "2031-03-09 00:00", "2031-03-10 00:00", "d20310309"),
        ("day", "2031-03-10 00:00:00", "2031-03-10 00:00", "2031-03-11 00:00", "d20310310"),
        ("week", "2031-03-09 12:00:00", "2031-03-03 00:00", "2031-03-10 00:00", "w20310303"),  # a Sunday
        ("week", "2031-03-10 00:00:01", "2031-03-10 00:00", "2031-03-17 00:00", "w20310310"),  # Monday
        ("month", "2031-02-28 23:00:00", "2031-02-01 00:00", "2031-03-01 00:00", "m203102"),
        ("month", "2031-12-31 23:59:59", "2031-12-01 00:00", "2032-01-01 00:00", "m203112"),
    ],
)
def test_windows(period: str, now: str, start: str, end: str, label: str) -> None:
    window = window_of(period, at(now))  # type: ignore[arg-type]
    assert (iso(window.start), iso(window.end), window.label) == (start, end, label)


def test_total_never_resets() -> None:
    window = window_of("total", at("2031-01-01 00:00:00"))
    assert (window.label, window.start, window.end) == ("total", None, None)
    assert window.contains(0) and window.contains(at("2099-01-01 00:00:00"))
