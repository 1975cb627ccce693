"""The PostgreSQL ledger against a real server: the same answers as SQLite, each event once, and
migrations applied once when replicas start together."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg

from gateway.metering import report
from gateway.metering.config import LedgerConfig
from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger, open_ledger
from gateway.metering.ledger_schema import event_row
from gateway.metering.postgres_schema import MIGRATIONS
from gateway.metering.usage import Usage
from tests.postgres_server import free_port

BASE = 1_800_000_000.0  # 2027-01-15T08:00:00Z, an hour boundary


def event(i: int) -> UsageEvent:
    return UsageEvent(
        ts=BASE + i * 97.3,  # about 37 per hour, over a day and a half
        request_id=f"req_{i}",
        key_name=f"key-{i % 3}",
        team=("research", "ops", "=sum(1)")[i % 3],
        agent=f"agent-{i % 4}",
        task=f"T-{i % 5}",
        session=f"s-{i % 7}",
        operation="chat" if i % 6 else "embeddings",
        requested_model="m",
        model=None if i % 11 == 0 else f"model-{i % 2}",
        provider=None if i % 11 == 0 else "p",
        route="auto" if i % 2 else None,
        status=200 if i % 9 else 502,
        outcome="ok" if i % 9 else "error",
        usage=Usage(100 + i, 5 + i % 13, cached_tokens=i % 4, reasoning_tokens=i % 3),
        cost_nanos=1000 * i + 7,
        latency_ms=12.5,
    )


EVENTS = [event(i) for i in range(1400)]
QUERIES = [
    {"group_by": "team,agent,day"},
    {"group_by": "team,agent,day", "from": str(BASE + 1234.5), "to": str(BASE + 86400 * 1.3)},
    {"group_by": "model,provider,route,operation,hour", "from": str(BASE + 10), "to": str(BASE + 40000)},
    {"group_by": "key", "team": "ops", "from": str(BASE), "to": str(BASE + 7200)},
    {"group_by": "task,session"},  # not in the rollup: from the events
    {"group_by": "", "from": str(BASE + 3599), "to": str(BASE + 3601)},  # no whole hour
    {"group_by": "agent", "model": "model-1", "from": str(BASE + 500), "to": str(BASE + 90000)},
]


async def fill(ledger: Ledger, events: list[UsageEvent]) -> None:
    await ledger.start()
    for e in events:
        ledger.record(e)
    await ledger.flush()


async def answers(ledger: Ledger) -> list[dict[str, Any]]:
    out = []
    for params in QUERIES:
        query = report.parse_query({"from": str(BASE - 10), "to": str(BASE + 86400 * 2), **params}, now=BASE)
        out.append((await report.run(ledger, query)).as_json())
    return out


def test_postgresql_and_sqlite_give_the_same_reports(postgres_dsn: str, tmp_path: Path) -> None:
    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        pg = open_ledger(LedgerConfig.model_validate({"url": postgres_dsn, "spool_dir": str(tmp_path / "s1")}))
        lite = open_ledger(LedgerConfig(path=str(tmp_path / "l.db"), spool_dir=str(tmp_path / "s2")))
        await fill(pg, EVENTS)
        await fill(lite, EVENTS)
        try:
            pg_answers, lite_answers = await answers(pg), await answers(lite)
            # The same reports from the events alone, without the rollup.
            raw = []
            for params in QUERIES:
                query = report.parse_query({"from": str(BASE - 10), "to": str(BASE + 86400 * 2), **params}, now=BASE)
                sql, values = report._events_sql(lite.backend, query)
                rows = await lite.query(sql, values)
                raw.append([tuple(r) for r in rows if r[len(query.group_by)]])
            return pg_answers, lite_answers, raw
        finally:
            await pg.close()
            await lite.close()

    pg_answers, lite_answers, raw = asyncio.run(run())
    assert pg_answers == lite_answers
    for answer, rows in zip(lite_answers, raw, strict=True):
        assert sum(r["requests"] for r in answer["data"]) == sum(r[len(answer["group_by"])] for r in rows)
        assert len(answer["data"]) == len(rows)
    assert pg_answers[0]["totals"]["requests"] == 1400
    assert pg_answers[0]["totals"]["errors"] == len([e for e in EVENTS if e.outcome == "error"])


def test_a_batch_written_twice_lands_once(postgres_dsn: str) -> None:
    async def run() -> tuple[int, int, int, int]:
        ledger = open_ledger(LedgerConfig.model_validate(postgres_dsn), spool=False)
        await ledger.start()
        rows = [event_row(e) for e in EVENTS[:50]]
        first = await ledger.backend.write(rows, [])
        again = await ledger.backend.write([*rows[25:], event_row(event(5000))], [])  # a replay, and one new
        db = await asyncpg.connect(postgres_dsn)
        try:
            stored = await db.fetchval("SELECT count(*) FROM usage_events")
            rolled = await db.fetchval("SELECT sum(requests) FROM usage_rollup")
        finally:
            await db.close()
            await ledger.close()
        return first, again, stored, int(rolled)

    assert asyncio.run(run()) == (50, 1, 51, 51)


def test_replicas_starting_together_migrate_once(postgres_dsn: str, tmp_path: Path) -> None:
    async def run() -> list[int]:
        ledgers = [
            open_ledger(LedgerConfig.model_validate({"url": postgres_dsn, "spool_dir": str(tmp_path / f"s{i}")}))
            for i in range(4)
        ]
        await asyncio.gather(*(ledger.start(require_database=True) for ledger in ledgers))
        for ledger in ledgers:
            await ledger.close()
        db = await asyncpg.connect(postgres_dsn)
        try:
            return [r[0] for r in await db.fetch("SELECT version FROM agentgw_schema ORDER BY version")]
        finally:
            await db.close()

    assert asyncio.run(run()) == list(range(1, len(MIGRATIONS) + 1))


def test_the_password_never_shows(postgres_dsn: str) -> None:
    config = LedgerConfig.model_validate(postgres_dsn)
    password = postgres_dsn.split(":")[2].split("@")[0]
    assert password in config.secrets()
    assert password not in config.location and "***" in config.location
    port = postgres_dsn.split("@127.0.0.1:")[1].split("/")[0]
    wrong = postgres_dsn.replace(f":{port}/", f":{free_port()}/")  # a port nothing listens on

    async def run() -> str:
        ledger = open_ledger(LedgerConfig.model_validate({"url": wrong, "connect_timeout_ms": 500}), spool=False)
        try:
            await ledger.start(require_database=True)
        except Exception as exc:  # LedgerUnavailable
            return str(exc)
        return "started"

    message = asyncio.run(run())
    assert "PostgreSQL ledger" in message and password not in message


def test_a_crash_between_commit_and_acknowledgement_still_counts_once(postgres_dsn: str, tmp_path: Path) -> None:
    """The spool's batch reached the database but the process died before moving past it: the next
    start replays it, and each event is still stored (and rolled up) once."""
    from gateway.metering.spool import claim

    rows = [event_row(e) for e in EVENTS[:30]]
    spool, _ = claim(tmp_path / "spool", 10**9)
    spool.append(rows, [], batch_size=10)
    spool.close()

    async def run() -> tuple[int, int, int]:
        config = LedgerConfig.model_validate({"url": postgres_dsn, "spool_dir": str(tmp_path / "spool")})
        writer = open_ledger(config, spool=False)
        await writer.start()
        await writer.backend.write(rows[:20], [])  # two of the three batches committed, none acknowledged
        await writer.close()
        ledger = open_ledger(config)
        await ledger.start()  # finds 30 events in its slot and replays them
        await ledger.flush()
        left = ledger.spooled
        await ledger.close()
        db = await asyncpg.connect(postgres_dsn)
        try:
            stored = await db.fetchval("SELECT count(DISTINCT request_id) FROM usage_events")
            rolled = await db.fetchval("SELECT sum(requests) FROM usage_rollup")
        finally:
            await db.close()
        return left, stored, int(rolled)

    assert asyncio.run(run()) == (0, 30, 30)


def test_the_consoles_questions_get_the_same_answers(postgres_dsn: str, tmp_path: Path) -> None:
    from gateway.metering import insights

    async def ask(ledger: Ledger) -> list[Any]:
        query = report.parse_query({"from": str(BASE - 10), "to": str(BASE + 86400 * 2)}, now=BASE)
        narrowed = report.parse_query(
            {"from": str(BASE - 10), "to": str(BASE + 86400 * 2), "agent": "agent-1"}, now=BASE
        )
        return [
            await insights.agents(ledger, query),
            await insights.latency(ledger, query, ("team", "model")),
            await insights.sessions(ledger, query, limit=5),
            await insights.sessions(ledger, query, prefix="s-1", failed=True),
            await insights.sessions(ledger, narrowed),
            await insights.guardrail_triggers(ledger, query),
        ]

    async def run() -> tuple[list[Any], list[Any], int, int]:
        pg = open_ledger(LedgerConfig.model_validate({"url": postgres_dsn, "spool_dir": str(tmp_path / "s1")}))
        lite = open_ledger(LedgerConfig(path=str(tmp_path / "l.db"), spool_dir=str(tmp_path / "s2")))
        await fill(pg, EVENTS)
        await fill(lite, EVENTS)
        try:
            spent = [await ledger.spent_nanos("ops", "agent", "agent-1", BASE + 3600) for ledger in (pg, lite)]
            return await ask(pg), await ask(lite), *spent
        finally:
            await pg.close()
            await lite.close()

    pg_answers, lite_answers, pg_spent, lite_spent = asyncio.run(run())
    assert pg_answers == lite_answers
    assert pg_spent == lite_spent > 0
