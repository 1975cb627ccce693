"""How fast `/v1/usage` answers over a big ledger: N generated events (10 million by default) in SQLite
and in PostgreSQL, the report grouped by team, agent and day, side by side in one run.

Events are generated inside each database (a recursive CTE in SQLite, generate_series in PostgreSQL),
spread over the 90 days before now: 200 keys and agents in 20 teams, 4 models, one call in 50 an
error. The hourly and daily rollups are filled from them as the ledger fills them when it writes. Each report
runs through `gateway.metering.report.run` on a started `Ledger`, as the endpoint does: best and
median of `--repeat` runs, for the default 30-day window and for all 90 days; with `--raw`, the same
report from the events alone (no rollup), for comparison.

Run: python bench/ledger_report_bench.py [--events 10000000] [--backends sqlite,postgresql] [--raw]
(PostgreSQL: a throwaway server of its own, as the tests start; generating 10M events takes minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.metering import report
from gateway.metering.config import LedgerConfig
from gateway.metering.ledger import Ledger, open_ledger
from gateway.metering.ledger_schema import COLUMNS

DAYS = 90
CHUNK = 1_000_000
# One generated event per i: the same expressions in both dialects.
VALUES = {
    "ts": "{start} + i * {step}",
    "request_id": "'req_' || i",
    "key_name": "'key-' || (i % 200)",
    "team": "'team-' || (i % 200 / 10)",
    "agent": "'agent-' || (i % 200)",
    "task": "'T-' || (i % 100000)",
    "session": "'s-' || (i % 1000000)",
    "tags": "'{{}}'",
    "requested_model": "'auto'",
    "model": "'model-' || (i % 4)",
    "provider": "'openai'",
    "operation": "'chat'",
    "stream": "0",
    "status": "CASE WHEN i % 50 = 0 THEN 502 ELSE 200 END",
    "outcome": "CASE WHEN i % 50 = 0 THEN 'error' ELSE 'ok' END",
    "input_tokens": "1000 + i % 500",
    "output_tokens": "200 + i % 100",
    "cached_tokens": "i % 7",
    "cache_write_tokens": "0",
    "reasoning_tokens": "i % 3",
    "estimated": "0",
    "cost_nanos": "300000 + i % 1000",
    "latency_ms": "412.5",
    "attempts": "1",
    "attempt_log": "'[]'",
    "guardrails": "'[]'",
}
INSERT = f"INSERT INTO usage_events ({', '.join(VALUES)}) SELECT {', '.join(VALUES.values())} "
ROLLUP = (
    "INSERT INTO usage_rollup SELECT {hour}, team, agent, key_name, COALESCE(model, ''), COALESCE(provider, ''), "
    "COALESCE(route, ''), operation, COUNT(*), SUM(CASE WHEN outcome IN ('error', 'shutdown') THEN 1 ELSE 0 END), "
    "SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), SUM(reasoning_tokens), SUM(cost_nanos) "
    "FROM usage_events GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
)
DAILY = (
    "INSERT INTO usage_rollup_daily SELECT bucket / 86400 * 86400, team, agent, key_name, model, provider, route, "
    "operation, SUM(requests), SUM(errors), SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), "
    "SUM(reasoning_tokens), SUM(cost_nanos) FROM usage_rollup GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
)
INDEXES = {  # dropped while generating, made again after: the same definitions as the migrations
    "usage_events_request": "CREATE UNIQUE INDEX usage_events_request ON usage_events (request_id)",
    "usage_events_ts": "CREATE INDEX usage_events_ts ON usage_events (ts)",
    "usage_events_session": "CREATE INDEX usage_events_session ON usage_events (session, ts)",
}
assert set(VALUES) <= set(COLUMNS)


def fill_sqlite(path: Path, events: int, start: float, step: float) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    for name in INDEXES:
        db.execute(f"DROP INDEX {name}")
    for first in range(0, events, CHUNK):
        last = min(events, first + CHUNK) - 1
        cte = f"WITH RECURSIVE g(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM g WHERE i < {last}) "  # noqa: S608
        db.execute(cte + INSERT.format(start=start, step=step) + "FROM g")
        print(f"  sqlite: {last + 1:,} events", flush=True)
    for sql in INDEXES.values():
        db.execute(sql)
    db.execute(ROLLUP.format(hour="CAST(ts / 3600 AS INTEGER) * 3600"))
    db.execute(DAILY)
    db.execute("ANALYZE")
    db.close()


async def fill_postgres(dsn: str, events: int, start: float, step: float) -> None:
    import asyncpg

    db = await asyncpg.connect(dsn)
    try:
        for name in INDEXES:
            await db.execute(f"DROP INDEX {name}")
        for first in range(0, events, CHUNK):
            last = min(events, first + CHUNK) - 1
            sql = INSERT.format(start=start, step=step) + f"FROM generate_series({first}::int8, {last}) AS i"
            await db.execute(sql)
            print(f"  postgresql: {last + 1:,} events", flush=True)
        for sql in INDEXES.values():
            await db.execute(sql)
        await db.execute(ROLLUP.format(hour="(floor(ts / 3600) * 3600)::int8"))
        await db.execute(DAILY)
        await db.execute("VACUUM ANALYZE usage_rollup_daily")
        await db.execute("VACUUM ANALYZE usage_events")
        await db.execute("VACUUM ANALYZE usage_rollup")
    finally:
        await db.close()


async def measure(ledger: Ledger, now: float, repeat: int, raw: bool) -> dict[str, tuple[float, float, int]]:
    out: dict[str, tuple[float, float, int]] = {}
    cases = {"30 days": "30d", "90 days": f"{DAYS}d"}
    for label, since in cases.items():
        query = report.parse_query({"group_by": "team,agent,day", "from": since}, now=now)
        times, rows = [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            result = await report.run(ledger, query)
            times.append(time.perf_counter() - started)
            rows = len(result.rows)
        out[label] = (min(times), statistics.median(times), rows)
        if raw and label == "30 days":
            sql, params = report._events_sql(ledger.backend, query)
            started = time.perf_counter()
            await ledger.query(sql, params)
            elapsed = time.perf_counter() - started
            out["30 days, events only"] = (elapsed, elapsed, rows)
    return out


async def run_backend(config: LedgerConfig, now: float, repeat: int, raw: bool) -> dict[str, tuple[float, float, int]]:
    ledger = open_ledger(config, spool=False)
    await ledger.start(require_database=True)
    try:
        return await measure(ledger, now, repeat, raw)
    finally:
        await ledger.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--raw", action="store_true", help="also the report from the events alone (slow)")
    parser.add_argument("--dsn", help="an empty PostgreSQL database (default: a throwaway server)")
    args = parser.parse_args()
    backends = args.backends.split(",")
    now = time.time()
    start, step = now - DAYS * 86400, DAYS * 86400 / args.events
    print(f"{args.events:,} events over {DAYS} days; {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs")
    results: dict[str, dict[str, tuple[float, float, int]]] = {}
    with tempfile.TemporaryDirectory(prefix="agentgw-report-") as tmp, contextlib.ExitStack() as stack:
        if "sqlite" in backends:
            config = LedgerConfig(path=str(Path(tmp) / "ledger.db"))
            asyncio.run(run_backend(config, now, 1, False))  # creates the schema
            started = time.perf_counter()
            fill_sqlite(Path(config.path), args.events, start, step)
            print(f"  sqlite filled in {time.perf_counter() - started:.0f} s", flush=True)
            results["sqlite"] = asyncio.run(run_backend(config, now, args.repeat, args.raw))
        if "postgresql" in backends:
            dsn = args.dsn
            if dsn is None:
                from tests.postgres_server import PostgresServer

                dsn = stack.enter_context(PostgresServer()).dsn("bench_report")
            config = LedgerConfig.model_validate({"url": dsn, "statement_timeout_ms": 600_000})
            asyncio.run(run_backend(config, now, 1, False))
            started = time.perf_counter()
            asyncio.run(fill_postgres(dsn, args.events, start, step))
            print(f"  postgresql filled in {time.perf_counter() - started:.0f} s", flush=True)
            results["postgresql"] = asyncio.run(run_backend(config, now, args.repeat, args.raw))
    print(f"\n/v1/usage?group_by=team,agent,day over {args.events:,} events (best / median of {args.repeat})")
    labels: list[str] = sorted({label for r in results.values() for label in r}, key=len)
    print(f"  {'window':<22}" + "".join(f"{name:>26}" for name in results))
    for label in labels:
        cells: list[Any] = []
        for name in results:
            best, median, rows = results[name].get(label, (float("nan"),) * 2 + (0,))
            cells.append(f"{best * 1000:8.0f} / {median * 1000:6.0f} ms ({rows} rows)")
        print(f"  {label:<22}" + "".join(f"{cell:>26}" for cell in cells))
    if len(results) == 2:
        a, b = results["postgresql"]["30 days"][1], results["sqlite"]["30 days"][1]
        print(f"  postgresql / sqlite (30 days, median): {a / b:.2f}")


if __name__ == "__main__":
    main()
