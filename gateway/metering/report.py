"""The chargeback report: `GET /v1/usage` and `agentgw usage`, over the ledger.

Only names from the fixed tables below reach the SQL text; every value a caller sends is a
bound parameter.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.errors import InvalidRequest
from gateway.metering.backend import LedgerBackend
from gateway.metering.ledger import Ledger
from gateway.metering.pricing import usd

DIMENSIONS = {
    "team": "team",
    "agent": "agent",
    "task": "task",
    "session": "session",
    "model": "model",
    "provider": "provider",
    "route": "route",
    "key": "key_name",
    "operation": "operation",
    "server": "server",  # tool calls (MCP): the upstream server and its tool's own name
    "tool": "tool",
    "agent_version": "agent_version",
}
BUCKETS = ("day", "hour")  # SQL per dialect: LedgerBackend.bucket
METRICS = (
    "requests",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
)
_METRIC_SQL = (
    "COUNT(*), SUM(CASE WHEN outcome IN ('error', 'shutdown') THEN 1 ELSE 0 END), SUM(input_tokens), "
    "SUM(output_tokens), SUM(cached_tokens), SUM(reasoning_tokens), SUM(cost_nanos)"
)
PARAMETERS = {"group_by", "from", "to", "format", *DIMENSIONS}
DEFAULT_WINDOW = timedelta(days=30)
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class UsageQuery:
    group_by: tuple[str, ...]
    start: float
    end: float
    filters: tuple[tuple[str, str], ...] = ()
    format: str = "json"


@dataclass(frozen=True, slots=True)
class UsageReport:
    query: UsageQuery
    rows: list[dict[str, Any]]
    totals: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "object": "usage.report",
            "from": iso(self.query.start),
            "to": iso(self.query.end),
            "group_by": list(self.query.group_by),
            "data": self.rows,
            "totals": self.totals,
        }

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*self.query.group_by, *METRICS])
        for row in self.rows:
            writer.writerow([csv_cell(row[name]) for name in (*self.query.group_by, *METRICS)])
        return out.getvalue()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value as a spreadsheet reads it: USD amounts in plain decimals (`0.000012`, never
    `1.2e-05`); text that a spreadsheet would run as a formula (agent, task and session ids are
    the callers' own) starts with a `'`, so `=cmd|'...'` shows as text (OWASP's CSV injection advice)."""
    if isinstance(value, float):
        return f"{value:.9f}".rstrip("0").rstrip(".") or "0"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def parse_query(params: Mapping[str, str], now: float | None = None) -> UsageQuery:
    """A usage query from request parameters; a 400 naming the parameter for anything malformed."""
    now = time.time() if now is None else now
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise InvalidRequest(
            f"Unknown parameter '{unknown[0]}'; use one of: {', '.join(sorted(PARAMETERS))}.",
            param=unknown[0],
        )
    group_by = tuple(part.strip() for part in params.get("group_by", "").split(",") if part.strip())
    for name in group_by:
        if name not in DIMENSIONS and name not in BUCKETS:
            raise InvalidRequest(
                f"Cannot group by '{name}'; use any of {', '.join([*DIMENSIONS, *BUCKETS])}.",
                param="group_by",
            )
    if len(set(group_by)) != len(group_by) or len([g for g in group_by if g in BUCKETS]) > 1:
        raise InvalidRequest("group_by names each dimension once and at most one of day, hour.", param="group_by")
    end = parse_time(params["to"], "to", now) if params.get("to") else now
    default_start = max(EARLIEST, end - DEFAULT_WINDOW.total_seconds())
    start = parse_time(params["from"], "from", now) if params.get("from") else default_start
    if start > end:
        raise InvalidRequest("'from' is after 'to'.", param="from")
    fmt = params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidRequest("format is json or csv.", param="format")
    filters = tuple((name, params[name]) for name in DIMENSIONS if params.get(name))
    return UsageQuery(group_by, start, end, filters, fmt)


EARLIEST = 0.0  # 1970-01-01T00:00:00Z: the ledger holds nothing older
LATEST = 253402300799.0  # 9999-12-31T23:59:59Z: the last moment a date can name


def parse_time(value: str, param: str, now: float) -> float:
    """Unix seconds, an ISO 8601 date or date-time (UTC unless it says otherwise), or a duration
    before now such as 7d, 24h, 30m; between 1970 and the year 9999, or a 400 naming `param`."""
    value = value.strip()
    moment: float | None = None
    if match := _RELATIVE.match(value):
        moment = now - float(match.group(1)) * _UNITS[match.group(2)]
    else:
        try:
            moment = float(value)
        except ValueError:
            moment = _iso_time(value)
    if moment is None:
        raise InvalidRequest(
            f"'{param}' must be unix seconds, an ISO 8601 date or time, or a duration like 7d.", param=param
        )
    if not EARLIEST <= moment <= LATEST:  # NaN fails this too
        raise InvalidRequest(f"'{param}' must be a time between 1970-01-01 and 9999-12-31 (UTC).", param=param)
    return moment


def _iso_time(value: str) -> float | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


SCAN_ABOVE = 0.1  # the share of the ledger's time span above which a query reads the whole table


async def time_column(ledger: Ledger, start: float, end: float) -> str:
    """`ts`, or `+ts` (the same value, but no index) when the window holds more than a tenth of the
    ledger's time span. Reading a row through the time index costs about sixteen times reading it in
    a scan of the table (SQLite, 100,000 events of the console bench: 1.6 us against 0.1 us), so the
    scan wins once the window holds more than about 6% of the rows."""
    span = await ledger.query("SELECT MIN(ts), MAX(ts) FROM usage_events")
    first, last = tuple(span[0]) if span else (None, None)
    if first is None or last is None or last <= first:
        return "ts"
    covered = (min(end, last) - max(start, first)) / (last - first)
    return "+ts" if covered > SCAN_ABOVE else "ts"


async def run(ledger: Ledger, query: UsageQuery) -> UsageReport:
    ts = "ts" if uses_rollups(query) else await time_column(ledger, query.start, query.end)
    sql, params = report_sql(ledger.backend, query, ts)
    rows: list[dict[str, Any]] = []
    for record in await ledger.query(sql, params):
        values = tuple(record)
        dims = dict(zip(query.group_by, values[: len(query.group_by)], strict=True))
        metrics = values[len(query.group_by) :]
        if not metrics[0]:
            continue  # the ungrouped aggregate over no events
        rows.append({**dims, **_metrics(metrics)})
    # Sorted here, not in SQL: both databases then give the same order (NULL first, byte order).
    rows.sort(key=lambda row: tuple((row[name] is not None, row[name] or "") for name in query.group_by))
    totals: dict[str, Any] = {name: 0 for name in METRICS}
    nanos = 0
    for row in rows:
        for name in METRICS[:-1]:
            totals[name] += row[name]
        nanos += row.pop("_cost_nanos")
    totals["cost_usd"] = usd(nanos)
    return UsageReport(query, rows, totals)


HOUR, DAY = 3600, 86400
_ROLLUP_NAMES = {"team", "agent", "key", "model", "provider", "route", "operation"}
_NULLABLE = {"model", "provider", "route"}  # stored as '' in the rollups
_SUMS = "SUM(requests), SUM(errors), SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), " \
    "SUM(reasoning_tokens), SUM(cost_nanos)"  # fmt: skip
_EVENT_METRICS = (
    "1 AS requests, CASE WHEN outcome IN ('error', 'shutdown') THEN 1 ELSE 0 END AS errors, input_tokens, "
    "output_tokens, cached_tokens, reasoning_tokens, cost_nanos"
)


def uses_rollups(query: UsageQuery) -> bool:
    """Whether the report reads the rollups: its dimensions are theirs and it spans a whole hour."""
    names = {*query.group_by, *(name for name, _ in query.filters)} - set(BUCKETS)
    h0, h1 = math.ceil(query.start / HOUR) * HOUR, math.floor(query.end / HOUR) * HOUR
    return names <= _ROLLUP_NAMES and h0 < h1


def report_sql(backend: LedgerBackend, query: UsageQuery, ts: str = "ts") -> tuple[str, list[Any]]:
    """The report's SQL and parameters. When every dimension asked for is one the rollups keep, whole
    UTC days come from the daily rollup, whole hours around them from the hourly one, and only the
    parts of an hour at either end of the window from the events themselves; reports by task or
    session read the events. The answer is the same either way (tests/gateway/metering)."""
    if not uses_rollups(query):
        return _events_sql(backend, query, ts)
    h0, h1 = math.ceil(query.start / HOUR) * HOUR, math.floor(query.end / HOUR) * HOUR
    d0, d1 = math.ceil(h0 / DAY) * DAY, math.floor(h1 / DAY) * DAY
    if d0 >= d1 or "hour" in query.group_by:
        d0 = d1 = h1  # no whole day (or hours asked for): the hourly rollup covers [h0, h1)
    filters = [f"{DIMENSIONS[name]} = ?" for name, _ in query.filters]
    values = [value for _, value in query.filters]

    def columns(time_column: str, rolled: bool) -> list[str]:
        out = []
        for i, name in enumerate(query.group_by):
            if name in BUCKETS:
                expr = backend.bucket("day" if name == "day" else "hour", time_column)
            else:
                column = DIMENSIONS[name]
                expr = f"NULLIF({column}, '')" if rolled and name in _NULLABLE else column
            out.append(f"{expr} AS g{i}")
        return out

    rolled = ", ".join([*columns("bucket", True), *METRIC_COLUMNS])
    raw = ", ".join([*columns("ts", False), _EVENT_METRICS])
    parts = [
        f"SELECT {rolled} FROM usage_rollup_daily WHERE "  # noqa: S608 - names from tables
        + " AND ".join(["bucket >= ?", "bucket < ?", *filters]),
        f"SELECT {rolled} FROM usage_rollup WHERE "  # noqa: S608
        + " AND ".join(["((bucket >= ? AND bucket < ?) OR (bucket >= ? AND bucket < ?))", *filters]),
        f"SELECT {raw} FROM usage_events WHERE "  # noqa: S608
        + " AND ".join(["((ts >= ? AND ts < ?) OR (ts >= ? AND ts < ?))", *filters]),
    ]
    params: list[Any] = [d0, d1, *values, h0, d0, d1, h1, *values, query.start, h0, h1, query.end, *values]
    groups = ", ".join(f"g{i}" for i in range(len(query.group_by)))
    sql = f"SELECT {groups + ', ' if groups else ''}{_SUMS} FROM ({' UNION ALL '.join(parts)}) AS u"  # noqa: S608
    if groups:
        sql += f" GROUP BY {groups}"
    return sql, params


METRIC_COLUMNS = ("requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens",
                  "cost_nanos")  # fmt: skip


def _events_sql(backend: LedgerBackend, query: UsageQuery, ts: str = "ts") -> tuple[str, list[Any]]:
    columns = [
        backend.bucket("day" if name == "day" else "hour", "ts") if name in BUCKETS else DIMENSIONS[name]
        for name in query.group_by
    ]
    where = [f"{ts} >= ?", f"{ts} < ?"] + [f"{DIMENSIONS[name]} = ?" for name, _ in query.filters]
    params: list[Any] = [query.start, query.end] + [value for _, value in query.filters]
    select = ", ".join([*columns, _METRIC_SQL])
    sql = f"SELECT {select} FROM usage_events WHERE {' AND '.join(where)}"  # noqa: S608 - names from tables
    if columns:
        sql += f" GROUP BY {', '.join(str(i + 1) for i in range(len(columns)))}"
    return sql, params


def _metrics(values: tuple[Any, ...]) -> dict[str, Any]:
    requests, errors, inp, out, cached, reasoning, nanos = (int(v or 0) for v in values)
    return {
        "requests": requests,
        "errors": errors,
        "input_tokens": inp,
        "output_tokens": out,
        "cached_tokens": cached,
        "reasoning_tokens": reasoning,
        "cost_usd": usd(nanos),
        "_cost_nanos": nanos,
    }
