"""The agentops migration (SQLite 6, PostgreSQL 3) on both backends: ledgers of every earlier schema
are brought forward with their events kept, events spooled by the version before it still land, and the
statements agentops adds (`execute`, `interval`) mean the same on both."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.metering import ledger_schema, postgres_schema
from gateway.metering.config import LedgerConfig
from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger, open_ledger
from gateway.metering.ledger_schema import COLUMNS, event_row
from gateway.metering.spool import Spool
from gateway.metering.usage import Usage

OLD_WIDTH = COLUMNS.index("agent_version")  # the event rows of the schema before agentops


def event(i: int, version: str | None = None) -> UsageEvent:
    return UsageEvent(
        ts=1_800_000_000.0 - 1 + i * 150, request_id=f"req_{i}", key_name="k", team="research", agent="crawler",
        operation="chat", requested_model="m", model="m", provider="p", status=200, outcome="ok",
        usage=Usage(10, 2), cost_nanos=100 + i, latency_ms=5.0, agent_version=version,
    )  # fmt: skip


def old_row(i: int) -> tuple[Any, ...]:
    return event_row(event(i))[:OLD_WIDTH]


def sqlite_before(path: Path, schema: int) -> None:
    """A ledger file at `schema` (its migrations only) holding one event in the columns it had then."""
    with sqlite3.connect(path, isolation_level=None) as db:
        for script in ledger_schema.MIGRATIONS[:schema]:
            for statement in script.split(";"):
                if statement.strip():
                    db.execute(statement)
        db.execute(f"PRAGMA user_version = {schema}")
        present = {row[1] for row in db.execute("PRAGMA table_info(usage_events)")}
        row = dict(zip(COLUMNS, event_row(event(0)), strict=True))
        names = [c for c in COLUMNS if c in present]
        marks = ", ".join("?" * len(names))
        db.execute(f"INSERT INTO usage_events ({', '.join(names)}) VALUES ({marks})", [row[c] for c in names])  # noqa: S608


def spool_old_batch(directory: Path) -> None:
    spool = Spool(directory, 1 << 20)
    spool.append([old_row(1), old_row(2)], [], 100)
    spool.close()


async def after_upgrade(ledger: Ledger) -> dict[str, Any]:
    await ledger.start()
    ledger.record(event(3, "fp-0123456789ab"))
    await ledger.flush()
    rows = await ledger.query("SELECT request_id, agent_version FROM usage_events ORDER BY request_id")
    inserted = [
        await ledger.execute(
            "INSERT INTO agent_versions (team, agent, version, first_seen, source, guardrails, tools) "
            "VALUES (?, ?, ?, ?, ?, '[]', '[]') ON CONFLICT (team, agent, version) DO NOTHING",
            ["research", "crawler", "fp-0123456789ab", 1.0, "fingerprint"],
        )
        for _ in range(2)
    ]
    window = ledger.backend.interval(300, "ts")
    buckets = await ledger.query(f"SELECT {window}, COUNT(*) FROM usage_events GROUP BY 1 ORDER BY 1")  # noqa: S608
    await ledger.close()
    return {
        "rows": [tuple(r) for r in rows],
        "inserted": inserted,
        "buckets": [(int(b), int(n)) for b, n in (tuple(r) for r in buckets)],
    }


EXPECTED = {
    "rows": [("req_0", None), ("req_1", None), ("req_2", None), ("req_3", "fp-0123456789ab")],
    "inserted": [1, 0],  # the second insert of the same version changes nothing: that is how "first seen" is told
    "buckets": [(1_799_999_700, 1), (1_800_000_000, 2), (1_800_000_300, 1)],  # 5-minute intervals
}


@pytest.mark.parametrize("schema", range(1, len(ledger_schema.MIGRATIONS)))
def test_sqlite_ledgers_of_every_earlier_schema(tmp_path: Path, schema: int) -> None:
    sqlite_before(tmp_path / "old.db", schema)
    spool_old_batch(tmp_path / "spool" / "slot-0")
    ledger = Ledger(tmp_path / "old.db", spool_dir=tmp_path / "spool")
    assert asyncio.run(after_upgrade(ledger)) == EXPECTED
    with sqlite3.connect(tmp_path / "old.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(ledger_schema.MIGRATIONS) == 7
        columns = [row[1] for row in db.execute("PRAGMA table_info(usage_events)")]
    assert columns == ["id", *COLUMNS]  # every column, in the order rows are written


@pytest.mark.parametrize("schema", range(1, len(postgres_schema.MIGRATIONS)))
def test_postgresql_ledgers_of_every_earlier_schema(postgres_dsn: str, tmp_path: Path, schema: int) -> None:
    async def before() -> None:
        conn = await asyncpg.connect(postgres_dsn)
        await conn.execute("CREATE TABLE agentgw_schema (version int NOT NULL)")
        for number, script in enumerate(postgres_schema.MIGRATIONS[:schema], 1):
            await conn.execute(script)
            await conn.execute("INSERT INTO agentgw_schema VALUES ($1)", number)
        present = {r[0] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'usage_events'")}  # fmt: skip
        row = dict(zip(COLUMNS, event_row(event(0)), strict=True))
        names = [c for c in COLUMNS if c in present]
        marks = ", ".join(f"${i + 1}" for i in range(len(names)))
        await conn.execute(f"INSERT INTO usage_events ({', '.join(names)}) VALUES ({marks})",  # noqa: S608
                           *[row[c] for c in names])  # fmt: skip
        await conn.close()

    asyncio.run(before())
    spool_old_batch(tmp_path / "spool" / "slot-0")
    config = LedgerConfig.model_validate({"url": postgres_dsn, "spool_dir": str(tmp_path / "spool")})
    assert asyncio.run(after_upgrade(open_ledger(config))) == EXPECTED

    async def versions() -> list[int]:
        conn = await asyncpg.connect(postgres_dsn)
        try:
            return [r[0] for r in await conn.fetch("SELECT version FROM agentgw_schema ORDER BY version")]
        finally:
            await conn.close()

    assert asyncio.run(versions()) == [1, 2, 3] == list(range(1, len(postgres_schema.MIGRATIONS) + 1))


@pytest.mark.parametrize("table", ["agent_versions", "eval_runs", "eval_scores", "anomalies"])
def test_both_schemas_have_the_same_agentops_columns(postgres_dsn: str, tmp_path: Path, table: str) -> None:
    async def columns(ledger: Ledger) -> list[str]:
        await ledger.start()
        rows = await ledger.query(f"SELECT * FROM {table} WHERE 1 = 0")  # noqa: S608
        await ledger.close()
        return list(rows[0].keys()) if rows else []

    lite = Ledger(tmp_path / "l.db")
    asyncio.run(columns(lite))
    with sqlite3.connect(tmp_path / "l.db") as db:
        lite_columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]

    async def pg_columns() -> list[str]:
        ledger = open_ledger(LedgerConfig.model_validate({"url": postgres_dsn, "spool_dir": str(tmp_path / "s")}))
        await ledger.start()
        await ledger.close()
        conn = await asyncpg.connect(postgres_dsn)
        try:
            rows = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
                table,
            )
            return [r[0] for r in rows]
        finally:
            await conn.close()

    assert asyncio.run(pg_columns()) == lite_columns
