"""The usage ledger: SQLite in WAL mode, written in batches by a background writer.

Calls only append a row to an in-memory queue (no I/O on the request path). A writer task drains
it every `flush_interval` seconds or as soon as `batch_size` rows wait, on a thread of its own.
Rows go in as multi-row INSERTs, so the writer thread takes the GIL once per hundred rows rather
than once per row, and it runs at a lower CPU priority than the event loop: on a busy core it
never stalls the request path for long (measured: bench/ledger_bench.py).
A failed write keeps its rows queued and is retried; `close()` drains everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from gateway.metering.events import UsageEvent

log = logging.getLogger("agentgw.ledger")

SCHEMA = """
CREATE TABLE IF NOT EXISTS usage_events (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    trace_id TEXT,
    key_name TEXT NOT NULL,
    team TEXT NOT NULL,
    agent TEXT NOT NULL,
    task TEXT,
    session TEXT,
    tags TEXT NOT NULL,
    route TEXT,
    requested_model TEXT NOT NULL,
    model TEXT,
    provider TEXT,
    operation TEXT NOT NULL,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    error_type TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    estimated INTEGER NOT NULL,
    cost_nanos INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    ttft_ms REAL,
    attempts INTEGER NOT NULL,
    attempt_log TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_events_ts ON usage_events (ts);
CREATE INDEX IF NOT EXISTS usage_events_session ON usage_events (session, ts);
"""

COLUMNS = (
    "ts",
    "request_id",
    "trace_id",
    "key_name",
    "team",
    "agent",
    "task",
    "session",
    "tags",
    "route",
    "requested_model",
    "model",
    "provider",
    "operation",
    "stream",
    "status",
    "outcome",
    "error_type",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "estimated",
    "cost_nanos",
    "latency_ms",
    "ttft_ms",
    "attempts",
    "attempt_log",
)
ROWS_PER_INSERT = 100  # one INSERT binds 29 x 100 parameters: a short hold of the GIL
WRITER_NICENESS = 10  # the writer yields the CPU to the event loop; it still gets ~10% of a busy core
Row = tuple[Any, ...]


def _lower_priority() -> None:
    """Run the writer thread at a lower CPU priority than the event loop (Linux: per thread)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WRITER_NICENESS)


@functools.lru_cache(maxsize=ROWS_PER_INSERT)
def _insert(rows: int) -> str:
    values = ", ".join(["(" + ", ".join("?" * len(COLUMNS)) + ")"] * rows)
    return f"INSERT INTO usage_events ({', '.join(COLUMNS)}) VALUES {values}"  # noqa: S608 - constants only


def _row(e: UsageEvent) -> Row:
    u = e.usage
    return (
        e.ts,
        e.request_id,
        e.trace_id,
        e.key_name,
        e.team,
        e.agent,
        e.task,
        e.session,
        orjson.dumps(dict(e.tags)).decode(),
        e.route,
        e.requested_model,
        e.model,
        e.provider,
        e.operation,
        int(e.stream),
        e.status,
        e.outcome,
        e.error_type,
        u.input_tokens,
        u.output_tokens,
        u.cached_tokens,
        u.cache_write_tokens,
        u.reasoning_tokens,
        int(u.estimated),
        e.cost_nanos,
        round(e.latency_ms, 3),
        None if e.ttft_ms is None else round(e.ttft_ms, 3),
        e.attempts,
        orjson.dumps(e.attempt_log).decode(),
    )


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
        self._pending: deque[Row] = deque()
        self._wake = asyncio.Event()
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="ledger-writer", initializer=_lower_priority)
        self._reader_thread = ThreadPoolExecutor(1, thread_name_prefix="ledger-reader")
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._last_pruned = 0.0
        self.written = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._db = await loop.run_in_executor(self._writer_thread, self._open)
        self._reader = await loop.run_in_executor(self._reader_thread, self._connect)
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=30000")
        return db

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        db.executescript(SCHEMA)
        return db

    def record(self, event: UsageEvent) -> None:
        """Queue an event; never blocks, never does I/O."""
        self._pending.append(_row(event))
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval)
            self._wake.clear()
            try:
                await self.flush()
            except sqlite3.Error as exc:  # keep the events; try again on the next round
                log.error("ledger write failed, %d events kept for retry: %s", len(self._pending), exc)
                await asyncio.sleep(min(5.0, self._flush_interval * 10))

    async def flush(self) -> None:
        """Write every queued event now."""
        async with self._write_lock:
            loop = asyncio.get_running_loop()
            while self._pending:
                size = min(self._batch_size, len(self._pending))
                rows = list(itertools.islice(self._pending, size))
                chunks = [rows[i : i + ROWS_PER_INSERT] for i in range(0, size, ROWS_PER_INSERT)]
                statements = [(len(c), list(itertools.chain.from_iterable(c))) for c in chunks]
                await loop.run_in_executor(self._writer_thread, self._write, statements)
                for _ in range(size):
                    self._pending.popleft()
                self.written += size
            if self._retention is not None and time.time() - self._last_pruned > 3600:
                self._last_pruned = time.time()
                await loop.run_in_executor(self._writer_thread, self._prune, time.time() - self._retention)

    def _write(self, statements: list[tuple[int, list[Any]]]) -> None:
        """One transaction of multi-row INSERTs (the values already flattened by the loop thread)."""
        assert self._db is not None
        with self._db:
            self._db.execute("BEGIN")
            for rows, values in statements:
                self._db.execute(_insert(rows), values)

    def _prune(self, before: float) -> None:
        assert self._db is not None
        deleted = self._db.execute("DELETE FROM usage_events WHERE ts < ?", (before,)).rowcount
        if deleted:
            log.info("ledger retention: removed %d events older than the retention period", deleted)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Run a read-only query on the reader connection, off the event loop."""

        def run() -> list[sqlite3.Row]:
            assert self._reader is not None
            self._reader.row_factory = sqlite3.Row
            return self._reader.execute(sql, params).fetchall()

        return await asyncio.get_running_loop().run_in_executor(self._reader_thread, run)

    async def close(self) -> None:
        """Stop the writer and write everything still queued."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task  # it finishes the write in progress rather than being cancelled mid-way
            self._task = None
        try:
            await self.flush()
        finally:
            loop = asyncio.get_running_loop()
            for pool, conn in ((self._writer_thread, self._db), (self._reader_thread, self._reader)):
                if conn is not None:
                    await loop.run_in_executor(pool, conn.close)
            self._writer_thread.shutdown(wait=True)
            self._reader_thread.shutdown(wait=True)
            self._db = self._reader = None
