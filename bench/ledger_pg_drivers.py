"""Which PostgreSQL driver writes the ledger: psycopg 3 against asyncpg, side by side in one run.

Each contender writes the same N events into the same usage_events table (the gateway's own schema
and idempotent insert: `ON CONFLICT (request_id) DO NOTHING`) in batches of 500, the way the ledger's
writer does, and the table is emptied between contenders. Reported per contender: events/s end to end,
and the CPU the writing costs this process per event (what the gateway's cores pay; the server's own
CPU is the same for all). The event loop's share matters as much as the rate: asyncpg runs on the
loop's thread, psycopg on a writer thread that competes with it for the GIL.

Contenders:
  psycopg-copy     COPY into a temp table, then INSERT ... SELECT ... ON CONFLICT DO NOTHING (thread)
  psycopg-unnest   one INSERT ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING per batch (thread)
  asyncpg-copy     copy_records_to_table into a temp table, then INSERT ... SELECT (event loop)
  asyncpg-unnest   the same unnest INSERT (event loop)

Run: python bench/ledger_pg_drivers.py [--events 100000] [--dsn postgresql://...]
(without --dsn it starts a throwaway PostgreSQL of its own, as the tests do)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ledger_bench import event
from gateway.metering.ledger_schema import COLUMNS, event_row
from gateway.metering.postgres_schema import PG_TYPES, migrate_sql

BATCH = 500
COLS = ", ".join(COLUMNS)
UNNEST = (
    f"INSERT INTO usage_events ({COLS}) SELECT * FROM unnest("  # noqa: S608 - constants
    + ", ".join(f"%s::{PG_TYPES[c]}[]" for c in COLUMNS)
    + ") ON CONFLICT (request_id) DO NOTHING"
)


def _asyncpg_unnest() -> str:
    args = ", ".join(f"${i}::{PG_TYPES[c]}[]" for i, c in enumerate(COLUMNS, 1))
    return f"INSERT INTO usage_events ({COLS}) SELECT * FROM unnest({args}) ON CONFLICT (request_id) DO NOTHING"  # noqa: S608


TEMP = f"CREATE TEMP TABLE staging AS SELECT {COLS} FROM usage_events WITH NO DATA"  # noqa: S608
FROM_TEMP = f"INSERT INTO usage_events ({COLS}) SELECT {COLS} FROM staging ON CONFLICT (request_id) DO NOTHING"  # noqa: S608


def batches(rows: list[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    for i in range(0, len(rows), BATCH):
        yield rows[i : i + BATCH]


def columns_of(batch: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(col) for col in zip(*batch, strict=True)]


def psycopg_copy(dsn: str, rows: list[tuple[Any, ...]]) -> None:
    import psycopg

    with psycopg.connect(dsn) as db:
        db.execute(TEMP)
        db.commit()
        for batch in batches(rows):
            with db.transaction(), db.cursor() as cur:
                with cur.copy(f"COPY staging ({COLS}) FROM STDIN") as copy:
                    for row in batch:
                        copy.write_row(row)
                cur.execute(FROM_TEMP)
                cur.execute("TRUNCATE staging")


def psycopg_unnest(dsn: str, rows: list[tuple[Any, ...]]) -> None:
    import psycopg

    with psycopg.connect(dsn) as db:
        for batch in batches(rows):
            with db.transaction():
                db.execute(UNNEST, columns_of(batch))  # type: ignore[arg-type]


async def asyncpg_copy(dsn: str, rows: list[tuple[Any, ...]]) -> None:
    import asyncpg

    db = await asyncpg.connect(dsn)
    try:
        await db.execute(TEMP)
        for batch in batches(rows):
            async with db.transaction():
                await db.copy_records_to_table("staging", records=batch, columns=list(COLUMNS))
                await db.execute(FROM_TEMP)
                await db.execute("TRUNCATE staging")
    finally:
        await db.close()


async def asyncpg_unnest(dsn: str, rows: list[tuple[Any, ...]]) -> None:
    import asyncpg

    db = await asyncpg.connect(dsn)
    sql = _asyncpg_unnest()
    try:
        for batch in batches(rows):
            async with db.transaction():
                await db.execute(sql, *columns_of(batch))
    finally:
        await db.close()


def measure(name: str, dsn: str, rows: list[tuple[Any, ...]], run: Callable[[], Awaitable[None] | None]) -> float:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("TRUNCATE usage_events")
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = run()
    if result is not None:
        asyncio.run(result)  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    used = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    with psycopg.connect(dsn) as db:
        stored = db.execute("SELECT count(*) FROM usage_events").fetchone()[0]  # type: ignore[index]
    assert stored == len(rows), (name, stored)
    rate = len(rows) / elapsed
    print(f"{name:<16} {rate:>10,.0f} events/s  {used / len(rows) * 1e6:>7.1f} us CPU/event in this process")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--dsn")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        dsn = args.dsn
        if dsn is None:
            from tests.postgres_server import PostgresServer

            dsn = stack.enter_context(PostgresServer()).dsn("bench_drivers")
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as db:
            for statement in migrate_sql():
                db.execute(statement)
        rows = [event_row(event(i)) for i in range(args.events)]
        print(f"{args.events:,} events, batches of {BATCH}, {time.strftime('%Y-%m-%d')}")
        rates = {
            "psycopg-copy": measure("psycopg-copy", dsn, rows, lambda: psycopg_copy(dsn, rows)),
            "psycopg-unnest": measure("psycopg-unnest", dsn, rows, lambda: psycopg_unnest(dsn, rows)),
            "asyncpg-copy": measure("asyncpg-copy", dsn, rows, lambda: asyncpg_copy(dsn, rows)),
            "asyncpg-unnest": measure("asyncpg-unnest", dsn, rows, lambda: asyncpg_unnest(dsn, rows)),
        }
        best = max(rates.values())
        print("ratios to the fastest: " + ", ".join(f"{k} {v / best:.2f}" for k, v in rates.items()))


if __name__ == "__main__":
    main()
