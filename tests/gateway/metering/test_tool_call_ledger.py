"""Tool calls in the ledger, on SQLite and on PostgreSQL: the migration that adds their columns
(from a database at the schema before it), and the same reports by server and tool from both."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg

from gateway.metering import report
from gateway.metering.config import LedgerConfig
from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger, open_ledger
from gateway.metering.ledger_schema import MIGRATIONS as SQLITE_MIGRATIONS
from gateway.metering.postgres_schema import MIGRATIONS as PG_MIGRATIONS
from gateway.metering.usage import Usage

BASE = 1_800_000_000.0


def tool_event(i: int) -> UsageEvent:
    return UsageEvent(
        ts=BASE + i * 61.0,
        request_id=f"req_tool_{i}",
        key_name="key-1",
        team="research",
        agent="planner",
        session="s-1",
        operation="tool_call",
        requested_model=("github__create_issue", "search__web")[i % 2],
        model=None,
        provider=None,
        status=200,
        outcome="ok" if i % 5 else "error",
        error_type=None if i % 5 else "tool_error",
        usage=Usage(),
        cost_nanos=1_000_000 * (i % 3),
        latency_ms=40.0,
        server=("github", "search")[i % 2],
        tool=("create_issue", "web")[i % 2],
        bytes_in=10 + i,
        bytes_out=100 + i,
    )


EVENTS = [tool_event(i) for i in range(60)]


async def filled(ledger: Ledger) -> dict[str, Any]:
    await ledger.start()
    for event in EVENTS:
        ledger.record(event)
    await ledger.flush()
    query = report.parse_query(
        {"group_by": "server,tool", "operation": "tool_call", "from": str(BASE - 1), "to": str(BASE + 7200)},
        now=BASE,
    )
    answer = (await report.run(ledger, query)).as_json()
    rows = await ledger.query("SELECT server, tool, bytes_in, bytes_out FROM usage_events WHERE request_id = ?",
                              ["req_tool_3"])  # fmt: skip
    await ledger.close()
    return {"report": answer, "row": tuple(rows[0])}


def test_tool_calls_report_the_same_on_sqlite_and_postgresql(postgres_dsn: str, tmp_path: Path) -> None:
    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        pg = open_ledger(LedgerConfig.model_validate({"url": postgres_dsn, "spool_dir": str(tmp_path / "s1")}))
        lite = open_ledger(LedgerConfig(path=str(tmp_path / "l.db"), spool_dir=str(tmp_path / "s2")))
        return await filled(pg), await filled(lite)

    on_pg, on_sqlite = asyncio.run(run())
    assert on_pg == on_sqlite
    data = {(r["server"], r["tool"]): r for r in on_pg["report"]["data"]}
    assert data[("github", "create_issue")]["requests"] == 30 and data[("search", "web")]["requests"] == 30
    assert data[("github", "create_issue")]["errors"] + data[("search", "web")]["errors"] == 12
    assert on_pg["row"] == ("search", "web", 13, 103)


def test_a_sqlite_ledger_from_before_tool_calls_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        for number, script in enumerate(SQLITE_MIGRATIONS[:4], 1):  # schema 4: before tool calls
            db.executescript(script)
            db.execute(f"PRAGMA user_version = {number}")
    asyncio.run(filled(open_ledger(LedgerConfig(path=str(path), spool_dir=str(tmp_path / "spool")))))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(SQLITE_MIGRATIONS)
        assert db.execute("SELECT COUNT(*) FROM usage_events WHERE server IS NOT NULL").fetchone()[0] == 60


def test_a_postgresql_ledger_from_before_tool_calls_is_migrated(postgres_dsn: str, tmp_path: Path) -> None:
    async def run() -> int:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            await conn.execute("CREATE TABLE agentgw_schema (version int NOT NULL)")
            await conn.execute(PG_MIGRATIONS[0])
            await conn.execute("INSERT INTO agentgw_schema (version) VALUES (1)")
        finally:
            await conn.close()
        await filled(open_ledger(LedgerConfig.model_validate({"url": postgres_dsn, "spool_dir": str(tmp_path)})))
        conn = await asyncpg.connect(postgres_dsn)
        try:
            assert await conn.fetchval("SELECT max(version) FROM agentgw_schema") == len(PG_MIGRATIONS)
            return int(await conn.fetchval("SELECT count(*) FROM usage_events WHERE tool IS NOT NULL"))
        finally:
            await conn.close()

    assert asyncio.run(run()) == 60
