"""The embedded ledger: one SQLite file in WAL mode, written on a thread of its own.

Rows go in as multi-row INSERTs of a few dozen rows, so the writer thread takes the GIL once per
statement rather than once per row and hands it back between statements, and it runs at a lower CPU
priority than the event loop: on a busy core it never stalls the request path for long (measured:
bench/ledger_bench.py, bench/overhead_bench.py). Reports read on a second connection and thread.
Several processes may share the file (`agentgw serve --workers N`): SQLite's lock serialises them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

from gateway.background import lower_thread_priority
from gateway.metering.backend import LedgerBackend, LedgerUnavailable, Row, RowsRefused
from gateway.metering.ledger_schema import (
    COLUMNS,
    INSERT_CONTENT,
    PRUNED_BY_TS,
    ROLLUPS,
    ROWS_PER_INSERT,
    insert_events,
    migrate,
    rollup_rows,
    upsert_rollup,
)

T = TypeVar("T")
READERS = 2  # threads answering reads (usage reports, the console); each has its own connection
_REQUEST_ID = COLUMNS.index("request_id")

# The driver binds an int, float or str at once but looks any other parameter up as an adapter
# first, and a miss raises and clears an AttributeError inside it (~0.15 us). Every ledger row binds
# about a dozen NULLs: with the identity registered for None, that lookup finds it.
sqlite3.register_adapter(type(None), lambda value: value)


class SQLiteBackend(LedgerBackend):
    kind: Literal["sqlite", "postgresql"] = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._writer_thread = ThreadPoolExecutor(
            1, thread_name_prefix="ledger-writer", initializer=lower_thread_priority
        )
        # Reports may run side by side (SQLite reads in WAL mode do not block each other): one connection per thread.
        self._reader_thread = ThreadPoolExecutor(READERS, thread_name_prefix="ledger-reader")
        self._readers = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._db: sqlite3.Connection | None = None

    @property
    def location(self) -> str:
        return str(self.path)

    def bucket(self, unit: Literal["day", "hour"], column: str) -> str:
        pattern = "%Y-%m-%d" if unit == "day" else "%Y-%m-%dT%H:00:00Z"
        return f"strftime('{pattern}', {column}, 'unixepoch')"

    def interval(self, seconds: int, column: str) -> str:
        return f"(CAST({column} / {int(seconds)} AS INTEGER) * {int(seconds)})"  # times are positive: truncation floors

    async def _on(self, pool: ThreadPoolExecutor, work: Callable[[], T]) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, work)
        except sqlite3.OperationalError as exc:  # busy, locked, disk full, I/O: the database, not the rows
            raise LedgerUnavailable(f"SQLite ledger {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=30000")
        return db

    async def open(self) -> None:
        def open_writer() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._connect()
            # A multi-row INSERT keeps a statement journal (the pages it changed, for undoing it
            # alone); past 64 KiB SQLite spills it to a new temporary file, which here meant a file
            # created, written and deleted every few batches. The writer's statements are bounded
            # (ROWS_PER_INSERT rows), so their journal stays in memory; the readers' sorts do not.
            db.execute("PRAGMA temp_store=MEMORY")
            migrate(db)
            return db

        self._db = await self._on(self._writer_thread, open_writer)
        await self._on(self._reader_thread, self._open_reader)

    def _open_reader(self) -> sqlite3.Connection:
        """A read connection for the calling reader thread."""
        reader = self._readers.connection = self._connect()
        self._reader_connections.append(reader)
        return reader

    async def write(self, events: Sequence[Row], contents: Sequence[Row]) -> int:
        # Values are flattened here, on the loop's thread; the writer thread only executes.
        chunks = [events[i : i + ROWS_PER_INSERT] for i in range(0, len(events), ROWS_PER_INSERT)]
        statements = [(len(c), [v for row in c for v in row]) for c in chunks]

        def run() -> int:
            assert self._db is not None
            inserted = 0
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                for rows, values in statements:
                    inserted += self._db.execute(insert_events(rows), values).rowcount
                    time.sleep(0)  # let the event loop's thread have the GIL between statements
                new = events if inserted == len(events) else self._inserted(events, inserted)
                if new:
                    for table, rollup in rollup_rows(new).items():
                        self._db.executemany(upsert_rollup(table), rollup)
                if contents:
                    self._db.executemany(INSERT_CONTENT, contents)
            return len(new)

        try:
            return await self._on(self._writer_thread, run)
        except LedgerUnavailable:
            raise
        except (sqlite3.Error, OverflowError, ValueError, TypeError) as exc:
            raise RowsRefused(f"{type(exc).__name__}: {exc}") from exc

    def _inserted(self, events: Sequence[Row], count: int) -> list[Row]:
        """The rows of `events` the write inserted when it skipped some (a batch replayed from the spool):
        row ids grow and the write lock is held, so the last `count` rows are the ones it inserted."""
        assert self._db is not None
        last = self._db.execute("SELECT request_id FROM usage_events ORDER BY id DESC LIMIT ?", (count,))
        stored = {request_id for (request_id,) in last}
        return [row for row in events if row[_REQUEST_ID] in stored]

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        def run() -> list[sqlite3.Row]:
            reader: sqlite3.Connection = getattr(self._readers, "connection", None) or self._open_reader()
            reader.row_factory = sqlite3.Row
            return reader.execute(sql, params).fetchall()

        return await self._on(self._reader_thread, run)

    async def insert(self, sql: str, params: Sequence[Any]) -> int:
        def run() -> int:
            assert self._db is not None
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                return int(self._db.execute(sql, params).lastrowid or 0)

        return await self._on(self._writer_thread, run)

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        def run() -> int:
            assert self._db is not None
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                return int(self._db.execute(sql, params).rowcount)

        return await self._on(self._writer_thread, run)

    async def prune(self, before: float) -> int:
        def run() -> int:
            assert self._db is not None
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                deleted = self._db.execute("DELETE FROM usage_events WHERE ts < ?", (before,)).rowcount
                for table in ROLLUPS:
                    self._db.execute(f"DELETE FROM {table} WHERE bucket < ?", (before,))  # noqa: S608
                self._db.execute("DELETE FROM call_content WHERE ts < ?", (before,))
                self._db.execute("DELETE FROM feedback WHERE ts < ?", (before,))
                for table in PRUNED_BY_TS:
                    self._db.execute(f"DELETE FROM {table} WHERE ts < ?", (before,))  # noqa: S608 - constants
            return int(deleted)

        return await self._on(self._writer_thread, run)

    async def close(self) -> None:
        if self._db is not None:
            await asyncio.get_running_loop().run_in_executor(self._writer_thread, self._db.close)
        for reader in self._reader_connections:
            reader.close()  # idle now: no read is running (every reader thread is joined below)
        self._writer_thread.shutdown(wait=True)
        self._reader_thread.shutdown(wait=True)
        self._db = None
        self._reader_connections.clear()
