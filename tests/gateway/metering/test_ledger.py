"""The ledger writes batches off the request path and loses nothing on close."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger
from gateway.metering.ledger_schema import ROLLUPS, event_row
from gateway.metering.sqlite_backend import SQLiteBackend
from gateway.metering.usage import Usage


def event(i: int) -> UsageEvent:
    return UsageEvent(
        ts=1_800_000_000 + i,
        request_id=f"req_{i}",
        key_name="k",
        team="t",
        agent="a",
        operation="chat",
        requested_model="m",
        model="m",
        provider="p",
        status=200,
        outcome="ok",
        usage=Usage(10 + i, 5),
        cost_nanos=1000 + i,
        latency_ms=1.5,
        tags=(("env", "x"),),
    )


def count(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM usage_events").fetchone()[0])


def test_close_flushes_everything(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    async def run() -> None:
        ledger = Ledger(path, batch_size=7, flush_interval=60)
        await ledger.start()
        for i in range(100):
            ledger.record(event(i))
        await ledger.close()

    asyncio.run(run())
    assert count(path) == 100
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        row = db.execute("SELECT input_tokens, cost_nanos, tags FROM usage_events WHERE request_id='req_3'").fetchone()
    assert row == (13, 1003, '{"env":"x"}')


def test_background_writer_drains_without_being_asked(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    async def run() -> int:
        ledger = Ledger(path, batch_size=1000, flush_interval=0.01)
        await ledger.start()
        for i in range(10):
            ledger.record(event(i))
        for _ in range(200):
            if ledger.queue_depth == 0 and ledger.written == 10:
                break
            await asyncio.sleep(0.01)
        written = count(path)
        await ledger.close()
        return written

    assert asyncio.run(run()) == 10


def test_retention_prunes_old_events(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    async def run() -> None:
        ledger = Ledger(path, retention_days=1)
        await ledger.start()
        ledger.record(event(0))  # in 2027: far from now, but "old" only relative to retention
        old = event(1)
        old.ts = 1_000_000_000  # 2001
        ledger.record(old)
        await ledger.close()

    asyncio.run(run())
    with sqlite3.connect(path) as db:
        assert [r[0] for r in db.execute("SELECT request_id FROM usage_events")] == ["req_0"]


def test_a_row_the_database_refuses_is_dropped_alone(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    async def run() -> Ledger:
        ledger = Ledger(path, batch_size=50, flush_interval=0.01)
        await ledger.start()
        for i in range(20):
            bad = event(i)
            if i == 7:
                bad.cost_nanos = 2**70  # too big for SQLite's integers
            ledger.record(bad)
        for _ in range(300):
            if ledger.queue_depth == 0:
                break
            await asyncio.sleep(0.01)
        ledger.record(event(99))  # the writer is still alive
        await ledger.close()
        return ledger

    ledger = asyncio.run(run())
    assert ledger.dropped == 1
    assert count(path) == 20


def test_a_batch_written_again_adds_only_its_new_events_to_the_rollups(tmp_path: Path) -> None:
    """A spool replayed after a crash may repeat events the database already has: they land once, and the
    rollups count only what was new, in each bucket (the events straddle an hour and a day)."""
    path = tmp_path / "ledger.db"
    start = 1_800_057_600 - 2  # two seconds before a UTC midnight
    events = [event(i) for i in range(6)]
    for i, e in enumerate(events):
        e.ts = start + i
        e.model = None if i == 4 else "m"
        e.outcome = "error" if i % 3 == 0 else "ok"
    rows = [event_row(e) for e in events]

    async def run() -> tuple[int, int]:
        backend = SQLiteBackend(path)
        await backend.open()
        first = await backend.write(rows[:3], [])
        again = await backend.write([rows[1], rows[4], rows[0], rows[5], rows[3], rows[2]], [])
        await backend.close()
        return first, again

    assert asyncio.run(run()) == (3, 3)
    assert count(path) == 6
    with sqlite3.connect(path) as db:
        for table, seconds in ROLLUPS.items():
            stored = db.execute(
                f"SELECT bucket, model, requests, errors, input_tokens, cost_nanos FROM {table} ORDER BY 1, 2"  # noqa: S608
            ).fetchall()
            expected = db.execute(
                f"SELECT CAST(ts AS INTEGER) / {seconds} * {seconds}, COALESCE(model, ''), COUNT(*), "  # noqa: S608
                "SUM(outcome = 'error'), SUM(input_tokens), SUM(cost_nanos) FROM usage_events "
                "GROUP BY 1, 2 ORDER BY 1, 2"
            ).fetchall()
            assert stored == expected
            assert len(stored) == 3  # before and after midnight, and the call without a model


def test_the_session_and_task_indexes_serve_the_queries_that_name_one(tmp_path: Path) -> None:
    """They leave out calls without a session or task (most calls): queries naming one still use them."""
    path = tmp_path / "ledger.db"

    async def run() -> None:
        ledger = Ledger(path, flush_interval=60)
        await ledger.start()
        await ledger.close()

    asyncio.run(run())
    queries = {
        "usage_events_session": ("SELECT id FROM usage_events WHERE session = ? ORDER BY ts, id", ["s"]),
        "usage_events_task": (
            "SELECT SUM(cost_nanos) FROM usage_events WHERE team = ? AND task = ? AND ts >= ?",
            ["t", "x", 0.0],
        ),
    }
    with sqlite3.connect(path) as db:
        for index, (sql, params) in queries.items():
            plan = " ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params))
            assert f"INDEX {index} " in plan


def test_the_writer_keeps_its_statement_journals_in_memory(tmp_path: Path) -> None:
    """A batch's multi-row INSERT journals the pages it changes; spilled to disk, that journal was a
    temporary file created and deleted every few batches. The writer keeps it in memory (its
    statements are bounded), the readers keep SQLite's default (their sorts may be large)."""

    async def run() -> tuple[int, int, int]:
        backend = SQLiteBackend(tmp_path / "ledger.db")
        await backend.open()
        written = await backend.write([event_row(event(i)) for i in range(60)], [])
        assert backend._db is not None
        writer = int(backend._db.execute("PRAGMA temp_store").fetchone()[0])
        reader = int((await backend.query("PRAGMA temp_store"))[0][0])
        await backend.close()
        return written, writer, reader

    assert asyncio.run(run()) == (60, 2, 0)  # 2: MEMORY, 0: the build's default
