"""The usage ledger: SQLite in WAL mode, written in batches by a background writer.

Calls only append to an in-memory queue (no I/O on the request path). A writer task drains it
every `flush_interval` seconds or as soon as `batch_size` events wait, on a thread of its own.
A failed write keeps its events queued and is retried; `close()` drains everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
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
CREATE INDEX IF NOT EXISTS usage_events_team_ts ON usage_events (team, ts);
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
_INSERT = f"INSERT INTO usage_events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608 - constants only


def _row(e: UsageEvent) -> tuple[Any, ...]:
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
        self._pending: deque[UsageEvent] = deque()
        self._wake = asyncio.Event()
        self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="ledger-writer")
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
        self._pending.append(event)
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
                batch = [self._pending[i] for i in range(min(self._batch_size, len(self._pending)))]
                await loop.run_in_executor(self._writer_thread, self._write, batch)
                for _ in batch:
                    self._pending.popleft()
                self.written += len(batch)
            if self._retention is not None and time.time() - self._last_pruned > 3600:
                self._last_pruned = time.time()
                await loop.run_in_executor(self._writer_thread, self._prune, time.time() - self._retention)

    def _write(self, batch: Sequence[UsageEvent]) -> None:
        assert self._db is not None
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(_INSERT, [_row(e) for e in batch])

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
