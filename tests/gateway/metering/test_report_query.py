"""Parsing /v1/usage parameters: only known names, times in every common form, 400s that name it."""

from __future__ import annotations

import pytest

from gateway.errors import InvalidRequest
from gateway.metering.report import parse_query, parse_time

NOW = 1_800_000_000.0


def test_defaults_are_the_last_30_days() -> None:
    query = parse_query({}, NOW)
    assert (query.group_by, query.end, query.start, query.format) == ((), NOW, NOW - 30 * 86400, "json")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - 7 * 86400),
        ("24h", NOW - 86400),
        ("30m", NOW - 1800),
        ("1.5h", NOW - 5400),
        ("1700000000", 1_700_000_000.0),
        ("2026-01-01", 1767225600.0),
        ("2026-01-01T00:00:00Z", 1767225600.0),
        ("2026-01-01T02:00:00+02:00", 1767225600.0),
    ],
)
def test_time_forms(text: str, expected: float) -> None:
    assert parse_time(text, "from", NOW) == expected


def test_filters_and_grouping() -> None:
    query = parse_query({"group_by": "team, agent,day", "team": "research", "task": "T-1"}, NOW)
    assert query.group_by == ("team", "agent", "day")
    assert dict(query.filters) == {"team": "research", "task": "T-1"}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "team,team"}, "group_by"),
        ({"group_by": "cost"}, "group_by"),
        ({"to": "yesterday"}, "to"),
        ({"format": "yaml"}, "format"),
        ({"teams": "x"}, "teams"),
    ],
)
def test_errors_name_the_parameter(params: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_query(params, NOW)
    assert info.value.param == param


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"from": "nan"}, "from"),
        ({"to": "inf"}, "to"),
        ({"to": "-Infinity"}, "to"),
        ({"from": "-1e20"}, "from"),
        ({"to": "1e400"}, "to"),
        ({"to": "0001-01-01"}, "to"),
        ({"from": "1969-12-31T23:59:59Z"}, "from"),
        ({"from": "9999-12-31T23:00:00-14:00"}, "from"),
        ({"from": "99999999999w"}, "from"),
        ({"from": "1" + "0" * 400 + "d"}, "from"),
    ],
)
def test_times_outside_1970_to_9999_are_400s(params: dict[str, str], param: str) -> None:
    """These overflowed the date arithmetic (500s) or matched nothing silently (NaN)."""
    with pytest.raises(InvalidRequest) as info:
        parse_query(params, NOW)
    assert info.value.param == param and "between 1970-01-01 and 9999-12-31" in info.value.message


def test_range_edges_are_accepted_and_the_default_window_starts_no_earlier_than_1970() -> None:
    assert parse_time("1970-01-01", "from", NOW) == 0.0
    assert parse_time("9999-12-31T23:59:59Z", "to", NOW) == 253402300799.0
    query = parse_query({"to": "1970-01-02"}, NOW)
    assert (query.start, query.end) == (0.0, 86400.0)
