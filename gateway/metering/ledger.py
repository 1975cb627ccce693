"""The usage ledger: SQLite in WAL mode, written in batches by a background writer.

Calls only append a row to an in-memory queue (no I/O on the request path). A writer task drains
it every `flush_interval` seconds or as soon as `batch_size` rows wait, on a thread of its own.
Rows go in as multi-row INSERTs of a few dozen rows, so the writer thread takes the GIL once per
statement rather than once per row and hands it back between statements, and it runs at a lower
CPU priority than the event loop: on a busy core it never stalls the request path for long
(measured: bench/ledger_bench.py, bench/overhead_bench.py). A failed write keeps
its rows queued and is retried; `close()` drains everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gateway.background import lower_thread_priority
from gateway.metering.events import UsageEvent
from gateway.metering.ledger_schema import (
    INSERT_CONTENT,
    ROWS_PER_INSERT,
    SCOPE_COLUMNS,
    Row,
    content_row,
    event_row,
    insert_events,
    migrate,
)

log = logging.getLogger("agentgw.ledger")

READERS = 2  # threads answering reads (usage reports, the console); each has its own connection
MAX_QUEUE = 500_000  # events held while the database cannot be written; beyond this the oldest are dropped


class Ledger:
    def __init__(
        self,
        path: str | Path,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        retention_days: float | None = None,
    ) -> None:
        self.path = Path(path)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retention = None if retention_days is None else retention_days * 86400
        self._events: deque[Row] = deque()
        self._contents: deque[Row] = deque()
        self._wake = asyncio.Event()
        self._writer_thread = ThreadPoolExecutor(
            1, thread_name_prefix="ledger-writer", initializer=lower_thread_priority
        )
        # Reports may run side by side (SQLite reads in WAL mode do not block each other): one connection per thread.
        self._reader_thread = ThreadPoolExecutor(READERS, thread_name_prefix="ledger-reader")
        self._readers = threading.local()
        self._reader_connections: list[sqlite3.Connection] = []
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._last_pruned = 0.0
        self.written = 0
        self.dropped = 0  # events that could not be written at all (logged); zero in a healthy ledger

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._db = await loop.run_in_executor(self._writer_thread, self._open)
        self._reader = await loop.run_in_executor(self._reader_thread, self._open_reader)
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=30000")
        return db

    def _open_reader(self) -> sqlite3.Connection:
        """A read connection for the calling reader thread."""
        reader = self._readers.connection = self._connect()
        self._reader_connections.append(reader)
        return reader

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        migrate(db)
        return db

    def record(self, event: UsageEvent) -> None:
        """Queue an event; never blocks, never does I/O."""
        if len(self._events) >= MAX_QUEUE:
            self._events.popleft()
            self._drop(1, "the ledger queue is full (is the database writable?)")
        self._events.append(event_row(event))
        content = content_row(event)
        if content is not None:
            self._contents.append(content)
        if len(self._events) >= self._batch_size:
            self._wake.set()

    @property
    def queue_depth(self) -> int:
        return len(self._events)

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except sqlite3.OperationalError as exc:  # busy, locked, disk full: keep the rows, retry later
                log.error("ledger write failed, %d events kept for retry: %s", len(self._events), exc)
                await asyncio.sleep(min(5.0, self._flush_interval * 10))
            except Exception:  # never let the writer die: the next round tries again
                log.exception("ledger writer error; %d events kept for retry", len(self._events))
                await asyncio.sleep(min(5.0, self._flush_interval * 10))

    async def flush(self) -> None:
        """Write every queued event now."""
        async with self._write_lock:
            loop = asyncio.get_running_loop()
            while self._events or self._contents:
                events = list(itertools.islice(self._events, self._batch_size))
                contents = list(itertools.islice(self._contents, self._batch_size))
                chunks = [events[i : i + ROWS_PER_INSERT] for i in range(0, len(events), ROWS_PER_INSERT)]
                statements = [(len(c), list(itertools.chain.from_iterable(c))) for c in chunks]
                try:
                    await loop.run_in_executor(self._writer_thread, self._write, statements, contents)
                except sqlite3.OperationalError:
                    raise  # the database, not the rows: keep them for the next round
                except Exception:  # some row the database refuses: write them one by one, drop the bad ones
                    await loop.run_in_executor(self._writer_thread, self._write_each, events, contents)
                for _ in events:
                    self._events.popleft()
                for _ in contents:
                    self._contents.popleft()
                self.written += len(events)
            if self._retention is not None and time.time() - self._last_pruned > 3600:
                self._last_pruned = time.time()
                await loop.run_in_executor(self._writer_thread, self._prune, time.time() - self._retention)

    def _write(self, statements: list[tuple[int, list[Any]]], contents: list[Row]) -> None:
        """One transaction: multi-row INSERTs (values flattened by the loop thread) and content rows."""
        assert self._db is not None
        with self._db:
            self._db.execute("BEGIN")
            for rows, values in statements:
                self._db.execute(insert_events(rows), values)
                time.sleep(0)  # let the event loop's thread have the GIL between statements
            if contents:
                self._db.executemany(INSERT_CONTENT, contents)

    def _write_each(self, events: list[Row], contents: list[Row]) -> None:
        assert self._db is not None
        for sql, rows in ((insert_events(1), events), (INSERT_CONTENT, contents)):
            for row in rows:
                try:
                    with self._db:
                        self._db.execute("BEGIN")
                        self._db.execute(sql, row)
                except sqlite3.OperationalError:
                    raise
                except Exception as exc:
                    self._drop(1, f"a row the database refused ({type(exc).__name__})")

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        log.error("ledger: %d event(s) dropped: %s", count, why)

    def _prune(self, before: float) -> None:
        assert self._db is not None
        with self._db:
            self._db.execute("BEGIN")
            deleted = self._db.execute("DELETE FROM usage_events WHERE ts < ?", (before,)).rowcount
            self._db.execute("DELETE FROM call_content WHERE ts < ?", (before,))
            self._db.execute("DELETE FROM feedback WHERE ts < ?", (before,))
        if deleted:
            log.info("ledger retention: removed %d events older than the retention period", deleted)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read-only query on the reader connection, off the event loop."""

        def run() -> list[sqlite3.Row]:
            assert self._reader is not None
            reader: sqlite3.Connection = getattr(self._readers, "connection", None) or self._open_reader()
            reader.row_factory = sqlite3.Row
            return reader.execute(sql, params).fetchall()

        return await asyncio.get_running_loop().run_in_executor(self._reader_thread, run)

    async def spent_nanos(self, team: str, kind: str, name: str, since: float | None) -> int:
        """The cost (nano-dollars) of one budget scope's calls since `since` (unix seconds; None: ever),
        what a budget lost from the state store is rebuilt from. Events still queued are written first,
        so the answer includes every call this process has finished."""
        column = SCOPE_COLUMNS[kind]
        sql = "SELECT COALESCE(SUM(cost_nanos), 0) FROM usage_events WHERE team = ?"
        params: list[Any] = [team]
        if column is not None:
            sql += f" AND {column} = ?"  # a column name from SCOPE_COLUMNS, never the caller's
            params.append(name)
        if since is not None:
            sql += " AND ts >= ?"
            params.append(since)
        await self.flush()
        rows = await self.query(sql, params)
        return int(rows[0][0])

    async def insert(self, sql: str, params: Sequence[Any]) -> int:
        """One INSERT on the writer connection (for rare writes such as feedback); the new row id."""

        def run() -> int:
            assert self._db is not None
            with self._db:
                self._db.execute("BEGIN")
                return int(self._db.execute(sql, params).lastrowid or 0)

        async with self._write_lock:
            return await asyncio.get_running_loop().run_in_executor(self._writer_thread, run)

    async def close(self) -> None:
        """Stop the writer and write everything still queued."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task  # it finishes the write in progress rather than being cancelled mid-way
            self._task = None
        try:
            await self.flush()
        finally:
            loop = asyncio.get_running_loop()
            if self._db is not None:
                await loop.run_in_executor(self._writer_thread, self._db.close)
            for reader in self._reader_connections:
                reader.close()  # idle now: no read is running (every reader thread is joined below)
            self._writer_thread.shutdown(wait=True)
            self._reader_thread.shutdown(wait=True)
            self._db = self._reader = None
