"""Questions the console asks of the ledger beyond the chargeback report: latency percentiles,
agents with their cost per task, sessions found by id, task or agent, and guardrail triggers.

Each takes a `report.UsageQuery` (its window and its filters, the caller's scope already added)
and reads through `Ledger.query`. The SQL is plain and portable (no JSON or date functions of one
database): percentiles and guardrail verdicts are worked out here, in Python, from plain rows.
Only names from `report.DIMENSIONS` reach the SQL text; every value is a bound parameter.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.metering.ledger import Ledger
from gateway.metering.pricing import usd
from gateway.metering.report import DIMENSIONS, UsageQuery, iso, time_column

PERCENTILES = (50, 95, 99)
ERROR = "CASE WHEN outcome IN ('error', 'shutdown') THEN 1 ELSE 0 END"  # as the report counts errors
BUCKET_FORMATS = {"day": "%Y-%m-%d", "hour": "%Y-%m-%dT%H:00:00Z"}  # the report's day and hour buckets


async def where(ledger: Ledger, query: UsageQuery, *, by_index: bool = False) -> tuple[str, list[Any]]:
    """The query's window and filters as a WHERE condition and its parameters; `by_index` for a
    query that reads rows in time order or by another index."""
    ts = "ts" if by_index else await time_column(ledger, query.start, query.end)
    clauses = [f"{ts} >= ?", f"{ts} < ?"] + [f"{DIMENSIONS[name]} = ?" for name, _ in query.filters]
    return " AND ".join(clauses), [query.start, query.end, *(value for _, value in query.filters)]


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile of sorted values (None for none)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


async def latency(ledger: Ledger, query: UsageQuery, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """p50, p95 and p99 of latency and of time to first token, per group of `by` (dimension names),
    over the calls that were answered (outcome `ok`)."""
    columns = [DIMENSIONS[name] for name in by]
    condition, params = await where(ledger, query)
    select = ", ".join([*columns, "latency_ms", "ttft_ms"])
    rows = await ledger.query(f"SELECT {select} FROM usage_events WHERE {condition} AND outcome = 'ok'", params)  # noqa: S608 - names from a table
    groups: dict[tuple[Any, ...], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    width = len(columns)
    for row in rows:
        values = tuple(row)
        latencies, ttfts = groups[values[:width]]
        latencies.append(values[width])
        if values[width + 1] is not None:
            ttfts.append(values[width + 1])
    out = []
    for key in sorted(groups, key=lambda k: tuple("" if v is None else str(v) for v in k)):
        latencies, ttfts = groups[key]
        latencies.sort()
        ttfts.sort()
        item: dict[str, Any] = dict(zip(by, key, strict=True))
        item["calls"] = len(latencies)
        for p in PERCENTILES:
            item[f"latency_p{p}_ms"] = _ms(percentile(latencies, p))
        for p in PERCENTILES:
            item[f"ttft_p{p}_ms"] = _ms(percentile(ttfts, p))
        out.append(item)
    return out


async def agents(ledger: Ledger, query: UsageQuery) -> list[dict[str, Any]]:
    """Each agent (by team) with its calls, errors, cost, tasks and cost per task, sessions, tokens,
    latency percentiles, the APIs (operations) and models it used, most expensive first."""
    condition, params = await where(ledger, query)
    mix, work, lat = await asyncio.gather(  # the ledger answers reads side by side
        ledger.query(
            f"SELECT team, agent, operation, model, COUNT(*), SUM({ERROR}), SUM(cost_nanos), SUM(input_tokens), "  # noqa: S608 - constants
            f"SUM(output_tokens), MIN(ts), MAX(ts) FROM usage_events WHERE {condition} "
            "GROUP BY team, agent, operation, model",
            params,
        ),
        ledger.query(
            "SELECT team, agent, COUNT(DISTINCT task), SUM(CASE WHEN task IS NULL THEN 0 ELSE cost_nanos END), "  # noqa: S608 - constants
            f"COUNT(DISTINCT session) FROM usage_events WHERE {condition} GROUP BY team, agent",
            params,
        ),
        latency(ledger, query, ("team", "agent")),
    )
    latencies = {(r["team"], r["agent"]): r for r in lat}
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for team, agent, operation, model, calls, errors, nanos, t_in, t_out, first, last in (tuple(r) for r in mix):
        item = found.setdefault((team, agent), {
            "team": team, "agent": agent, "requests": 0, "errors": 0, "_nanos": 0, "input_tokens": 0,
            "output_tokens": 0, "operations": {}, "_models": {}, "first_seen": first, "last_seen": last,
        })  # fmt: skip
        item["requests"] += calls
        item["errors"] += int(errors or 0)
        item["_nanos"] += int(nanos or 0)
        item["input_tokens"] += int(t_in or 0)
        item["output_tokens"] += int(t_out or 0)
        item["operations"][operation] = item["operations"].get(operation, 0) + calls
        used = item["_models"].setdefault(model, [0, 0])
        used[0] += calls
        used[1] += int(nanos or 0)
        item["first_seen"], item["last_seen"] = min(item["first_seen"], first), max(item["last_seen"], last)
    tasks = {(r[0], r[1]): (int(r[2] or 0), int(r[3] or 0), int(r[4] or 0)) for r in (tuple(r) for r in work)}
    out = sorted(found.values(), key=lambda item: (-item["_nanos"], item["team"], item["agent"]))
    for item in out:
        key = (item["team"], item["agent"])
        task_count, task_nanos, session_count = tasks.get(key, (0, 0, 0))
        lat = latencies.get(key, {})
        nanos = item.pop("_nanos")
        models = item.pop("_models")
        item.update({
            "error_rate": round(item["errors"] / item["requests"], 4) if item["requests"] else 0.0,
            "cost_usd": usd(nanos), "tasks": task_count,
            "cost_per_task_usd": usd(task_nanos // task_count) if task_count else None,
            "sessions": session_count,
            "latency_p50_ms": lat.get("latency_p50_ms"), "latency_p95_ms": lat.get("latency_p95_ms"),
            "operations": dict(sorted(item["operations"].items())),
            "models": [{"model": m, "requests": c, "cost_usd": usd(n)}
                       for m, (c, n) in sorted(models.items(), key=lambda entry: -entry[1][1])],
            "first_seen": iso(item["first_seen"]), "last_seen": iso(item["last_seen"]),
        })  # fmt: skip
    return out


async def sessions(
    ledger: Ledger, query: UsageQuery, *, prefix: str | None = None, failed: bool = False, limit: int = 50
) -> list[dict[str, Any]]:
    """Sessions in the window, most recently active first: the query's filters (task, agent, ...)
    and, with `prefix`, only session ids that start with it; with `failed`, only sessions with an
    error in the window. The newest calls are read first (the time index, newest to oldest) until
    `limit` sessions are found; only those sessions are then added up."""
    narrowed = any(name not in ("team", "key") for name, _ in query.filters)
    if narrowed and not prefix:  # a task's or an agent's sessions: few rows in all, add them up at once
        return await _sessions_grouped(ledger, query, failed, limit)
    condition, params = await where(ledger, query, by_index=True)
    if prefix:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        condition += " AND session LIKE ? ESCAPE '\\'"
        params.append(escaped + "%")
    if failed:
        condition += f" AND {ERROR} = 1"
    chosen: dict[tuple[str, str], None] = {}
    offset, page = 0, max(500, limit * 20)
    while len(chosen) < limit:
        rows = await ledger.query(
            f"SELECT session, team FROM usage_events WHERE session IS NOT NULL AND {condition} "  # noqa: S608 - constants
            "ORDER BY ts DESC LIMIT ? OFFSET ?",
            [*params, page, offset],
        )
        for row in rows:
            chosen.setdefault((row[0], row[1]), None)
        if len(rows) < page:
            break
        offset, page = offset + page, page * 4
    picked = list(chosen)[:limit]
    if not picked:
        return []
    window, window_params = await where(ledger, query, by_index=True)
    pairs = " OR ".join(["(session = ? AND team = ?)"] * len(picked))
    rows = await ledger.query(
        f"{_SESSION_COLUMNS} WHERE ({pairs}) AND {window} GROUP BY session, team",
        [*(value for pair in picked for value in pair), *window_params],
    )
    order = {pair: i for i, pair in enumerate(picked)}
    return [_session_row(row) for row in sorted(rows, key=lambda r: order[(r[0], r[1])])]


_SESSION_COLUMNS = (
    "SELECT session, team, MIN(agent), COUNT(DISTINCT agent), MIN(task), COUNT(DISTINCT task), COUNT(*), "  # noqa: S608
    f"SUM({ERROR}), SUM(cost_nanos), SUM(input_tokens), SUM(output_tokens), MIN(ts), MAX(ts + latency_ms / 1000.0) "
    "FROM usage_events"
)


async def _sessions_grouped(ledger: Ledger, query: UsageQuery, failed: bool, limit: int) -> list[dict[str, Any]]:
    condition, params = await where(ledger, query)
    having = f" HAVING SUM({ERROR}) > 0" if failed else ""
    rows = await ledger.query(
        f"{_SESSION_COLUMNS} WHERE session IS NOT NULL AND {condition} GROUP BY session, team{having} "
        "ORDER BY MAX(ts) DESC LIMIT ?",
        [*params, limit],
    )
    return [_session_row(row) for row in rows]


def _session_row(row: Any) -> dict[str, Any]:
    session, team, agent, agents_n, task, tasks_n, calls, errors, nanos, t_in, t_out, start, end = tuple(row)
    return {
        "session": session, "team": team, "agent": agent, "agents": agents_n, "task": task, "tasks": tasks_n,
        "calls": calls, "errors": int(errors or 0), "cost_usd": usd(int(nanos or 0)),
        "input_tokens": int(t_in or 0), "output_tokens": int(t_out or 0),
        "started": iso(start), "ended": iso(end), "duration_ms": round((end - start) * 1000, 3),
    }  # fmt: skip


async def guardrail_triggers(ledger: Ledger, query: UsageQuery, bucket: str = "day") -> dict[str, Any]:
    """How often each guardrail fired: per time bucket, per agent, and in all. `calls` counts calls
    on which it fired, `matches` what it found; `actions` how the calls were handled."""
    condition, params = await where(ledger, query)
    rows = await ledger.query(
        f"SELECT ts, team, agent, guardrails FROM usage_events WHERE {condition} AND guardrails <> '[]'",  # noqa: S608 - constants
        params,
    )
    fmt = BUCKET_FORMATS[bucket]
    series: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    by_agent: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    totals: dict[str, dict[str, Any]] = {}
    for ts, team, agent, verdicts_json in (tuple(r) for r in rows):
        when = datetime.fromtimestamp(ts, UTC).strftime(fmt)
        fired: dict[str, int] = {}
        for verdict in orjson.loads(verdicts_json):
            name = str(verdict.get("guardrail"))
            fired[name] = fired.get(name, 0) + int(verdict.get("count") or 0)
            total = totals.setdefault(name, {"guardrail": name, "calls": 0, "matches": 0, "actions": {}})
            action = str(verdict.get("action"))
            total["actions"][action] = total["actions"].get(action, 0) + 1
        for name, matches in fired.items():
            for counter in (series[(when, name)], by_agent[(team, agent, name)]):
                counter[0] += 1
                counter[1] += matches
            totals[name]["calls"] += 1
            totals[name]["matches"] += matches
    return {
        "data": [{"bucket": b, "guardrail": g, "calls": c, "matches": m} for (b, g), (c, m) in sorted(series.items())],
        "by_agent": [
            {"team": t, "agent": a, "guardrail": g, "calls": c, "matches": m}
            for (t, a, g), (c, m) in sorted(by_agent.items(), key=lambda item: (-item[1][0], item[0]))
        ],
        "totals": sorted(totals.values(), key=lambda item: (-item["calls"], item["guardrail"])),
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
