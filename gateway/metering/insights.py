"""Questions the console asks of the ledger beyond the chargeback report: latency percentiles,
agents with their cost per task, sessions found by id, task or agent, and guardrail triggers.

Each takes a `report.UsageQuery` (its window and its filters, the caller's scope already added)
and reads through `Ledger.query`. The SQL is plain and portable (no JSON or date functions of one
database): percentiles and guardrail verdicts are worked out here, in Python, from plain rows.
Only names from `report.DIMENSIONS` reach the SQL text; every value is a bound parameter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.metering.ledger import Ledger
from gateway.metering.pricing import usd
from gateway.metering.report import DIMENSIONS, UsageQuery, iso, time_column
from gateway.metering.report import run as run_report

PERCENTILES = (50, 95, 99)
NANOS = 1_000_000_000
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
    latency percentiles, the APIs (operations) and models it used, most expensive first.

    Three reads side by side: the counts by operation and model from the usage report (the rollups
    for whole hours), tasks, sessions and first and last call added up by the database, and the
    answered calls' latencies (percentiles need every value; only that column crosses over)."""
    condition, params = await where(ledger, query)
    mix, work, latencies = await asyncio.gather(
        run_report(ledger, dataclasses.replace(query, group_by=("team", "agent", "operation", "model"))),
        ledger.query(
            "SELECT team, agent, COUNT(DISTINCT task), SUM(CASE WHEN task IS NULL THEN 0 ELSE cost_nanos END), "  # noqa: S608 - constants
            f"COUNT(DISTINCT session), MIN(ts), MAX(ts) FROM usage_events WHERE {condition} GROUP BY team, agent",
            params,
        ),
        ledger.query(f"SELECT team, agent, latency_ms FROM usage_events WHERE {condition} AND outcome = 'ok'", params),  # noqa: S608 - constants
    )
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in mix.rows:
        item = found.setdefault((row["team"], row["agent"]), {
            "team": row["team"], "agent": row["agent"], "requests": 0, "errors": 0, "_nanos": 0,
            "input_tokens": 0, "output_tokens": 0, "operations": {}, "_models": {},
        })  # fmt: skip
        nanos = round(row["cost_usd"] * NANOS)  # exact: the report's amounts are nano-dollars / 1e9
        item["requests"] += row["requests"]
        item["errors"] += row["errors"]
        item["_nanos"] += nanos
        item["input_tokens"] += row["input_tokens"]
        item["output_tokens"] += row["output_tokens"]
        item["operations"][row["operation"]] = item["operations"].get(row["operation"], 0) + row["requests"]
        used = item["_models"].setdefault(row["model"], [0, 0])
        used[0] += row["requests"]
        used[1] += nanos
    done = {(r[0], r[1]): tuple(r)[2:] for r in work}
    answered: dict[tuple[str, str], list[float]] = defaultdict(list)
    for team, agent, latency_ms in latencies:
        answered[(team, agent)].append(latency_ms)
    out = sorted(found.values(), key=lambda item: (-item["_nanos"], item["team"], item["agent"]))
    for item in out:
        key = (item["team"], item["agent"])
        tasks, task_nanos, sessions, first, last = done.get(key, (0, 0, 0, None, None))
        ordered = sorted(answered.get(key, ()))
        nanos = item.pop("_nanos")
        models = item.pop("_models")
        item.update({
            "error_rate": round(item["errors"] / item["requests"], 4) if item["requests"] else 0.0,
            "cost_usd": usd(nanos), "tasks": int(tasks or 0),
            "cost_per_task_usd": usd(int(task_nanos or 0) // tasks) if tasks else None,
            "sessions": int(sessions or 0),
            "latency_p50_ms": _ms(percentile(ordered, 50)), "latency_p95_ms": _ms(percentile(ordered, 95)),
            "operations": dict(sorted(item["operations"].items())),
            "models": [{"model": m, "requests": c, "cost_usd": usd(n)}
                       for m, (c, n) in sorted(models.items(), key=lambda entry: -entry[1][1])],
            "first_seen": None if first is None else iso(first), "last_seen": None if last is None else iso(last),
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
    # By session id alone, so the database reads the session index; a session id another team also
    # used comes back as a group of its own and is dropped here. (Pairs of session and team OR-ed
    # together made SQLite read each team's whole window once per pair instead.)
    ids = list(dict.fromkeys(session for session, _ in picked))
    rows = await ledger.query(
        f"{_SESSION_COLUMNS} WHERE session IN ({', '.join('?' * len(ids))}) AND {window} GROUP BY session, team",
        [*ids, *window_params],
    )
    order = {pair: i for i, pair in enumerate(picked)}
    mine = [row for row in rows if (row[0], row[1]) in order]
    return [_session_row(row) for row in sorted(mine, key=lambda r: order[(r[0], r[1])])]


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
