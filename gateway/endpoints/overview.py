"""GET /v1/overview: the console's first page in one answer. Spend, calls and errors today and this
month (UTC), the last 30 days day by day, latency percentiles over the last 24 hours, and the top
agents and tasks of the month by cost. Filters as `/v1/usage` (no window: these are fixed), scoped
the same way. Read through the usage report, so any ledger that answers `/v1/usage` answers this."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.endpoints.window import bounded_int, scoped_query
from gateway.metering import insights, report
from gateway.metering.pricing import usd

DAY = 86400.0
NANOS = 1_000_000_000


async def overview(request: Request) -> JSONResponse:
    query, extra, ledger = await scoped_query(request, ("top",), window=False)
    top = bounded_int(extra, "top", 5, 1, 50)
    now = time.time()
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1).timestamp()
    day_start = today.timestamp()
    end = now + 1

    def window(start: float, *group_by: str) -> report.UsageQuery:
        return dataclasses.replace(query, start=start, end=end, group_by=group_by)

    first_day = min(month, day_start - 29 * DAY)
    by_day, tasks, latency = await asyncio.gather(  # the ledger answers reads side by side
        report.run(ledger, window(first_day, "day", "team", "agent")),
        report.run(ledger, window(month, "task")),
        insights.latency(ledger, window(now - DAY)),
    )
    today_key, month_key, since = (
        report.iso(day_start)[:10],
        report.iso(month)[:10],
        report.iso(day_start - 29 * DAY)[:10],
    )
    daily: dict[str, dict[str, Any]] = {}
    agents: dict[tuple[str, str], dict[str, Any]] = {}
    today_totals, month_totals = _Totals(), _Totals()
    for row in by_day.rows:
        if row["day"] >= since:
            _add(daily.setdefault(row["day"], {"day": row["day"]}), row)
        if row["day"] >= month_key:
            month_totals.add(row)
            _add(agents.setdefault((row["team"], row["agent"]), {"team": row["team"], "agent": row["agent"]}), row)
        if row["day"] == today_key:
            today_totals.add(row)
    by_cost = sorted(agents.values(), key=lambda row: -row["_nanos"])
    top_tasks = sorted((row for row in tasks.rows if row["task"] is not None), key=lambda row: -row["cost_usd"])
    body: dict[str, Any] = {
        "object": "overview",
        "now": report.iso(now),
        "today": today_totals.as_json(),
        "month": month_totals.as_json(),
        "month_start": report.iso(month),
        "daily": [_done(row) for _, row in sorted(daily.items())],
        "latency_24h": latency[0] if latency else {"calls": 0},
        "top_agents": [_done(row) for row in by_cost[:top]],
        "agents": len(by_cost),
        "top_tasks": top_tasks[:top],
        "tasks": len(top_tasks),
    }
    return JSONResponse(body)


def _nanos(row: dict[str, Any]) -> int:
    nanos: int = round(float(row["cost_usd"]) * NANOS)
    return nanos  # exact: the report's USD amounts are nano-dollars / 1e9


def _add(into: dict[str, Any], row: dict[str, Any]) -> None:
    for name in ("requests", "errors", "input_tokens", "output_tokens"):
        into[name] = into.get(name, 0) + row[name]
    into["_nanos"] = into.get("_nanos", 0) + _nanos(row)


def _done(row: dict[str, Any]) -> dict[str, Any]:
    row["cost_usd"] = usd(row.pop("_nanos"))
    return row


class _Totals:
    def __init__(self) -> None:
        self.row: dict[str, Any] = {}

    def add(self, row: dict[str, Any]) -> None:
        _add(self.row, row)

    def as_json(self) -> dict[str, Any]:
        out = {"requests": 0, "errors": 0, "input_tokens": 0, "output_tokens": 0, **self.row}
        out["cost_usd"] = usd(out.pop("_nanos", 0))
        return out
