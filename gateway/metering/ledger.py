"""The usage ledger: events queued in memory by the call path, written in batches by a background
writer to a backend (SQLite, or PostgreSQL for a fleet), and kept in a local spool on disk while the
database cannot take them.

Calls only append a row to an in-memory queue (no I/O on the request path). A writer task drains it
every `flush_interval` seconds or as soon as `batch_size` rows wait. When a write fails or takes longer
than `write_timeout` (the database down, hung, restarting), the queued events go to the spool, fsynced,
and so does every event after them while the spool is not empty: events are written in the order
they happened. The writer retries with backoff and replays the spool, oldest batch first; a batch
leaves the spool only after the database committed it, and the backends skip request ids already
stored, so each event lands exactly once, also when the process dies between the two. Calls are
answered as usual throughout. `close()` writes what it can and leaves the rest in the spool for the
next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from gateway.errors import ServiceUnavailable
from gateway.metering.backend import LedgerBackend, LedgerUnavailable, Row, RowsRefused
from gateway.metering.config import LedgerConfig
from gateway.metering.events import UsageEvent
from gateway.metering.ledger_schema import SCOPE_COLUMNS, content_row, event_row
from gateway.metering.spool import Spool, claim

log = logging.getLogger("agentgw.ledger")

MAX_QUEUE = 500_000  # events held in memory; beyond this the oldest are dropped (the spool takes them first)
MAX_BACKOFF = 5.0
T = TypeVar("T")
State = Literal["starting", "ok", "spooling", "closed"]


class Ledger:
    def __init__(
        self,
        backend: LedgerBackend | str | Path,
        *,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        retention_days: float | None = None,
        write_timeout: float = 10.0,
        spool_dir: Path | None = None,
        spool_max_bytes: int = 1024 * 1024 * 1024,
    ) -> None:
        if not isinstance(backend, LedgerBackend):
            from gateway.metering.sqlite_backend import SQLiteBackend

            backend = SQLiteBackend(backend)
        self.backend = backend
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retention = None if retention_days is None else retention_days * 86400
        self._write_timeout = write_timeout
        self._spool_dir = spool_dir
        self._spool_max_bytes = spool_max_bytes
        self._spool: Spool | None = None
        self._orphans: list[Spool] = []
        self._events: deque[Row] = deque()
        self._contents: deque[Row] = deque()
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._opened = False
        self._last_pruned = 0.0
        self._backoff = 0.0
        self.state: State = "starting"
        self.written = 0  # events the database took (inserted, or already there from an earlier try)
        self.dropped = 0  # events that could not be kept at all (logged); zero in a healthy ledger
        self.write_failures = 0  # writes that failed or timed out (the events waited in the spool)
        self.last_error: str | None = None

    async def start(self, *, require_database: bool = False) -> None:
        """Open the database; when it cannot be reached, start anyway (events are spooled and the writer
        keeps trying), or raise LedgerUnavailable with `require_database` (a reader such as `agentgw
        usage`). A schema from a newer agentgw, or a spool that cannot be opened, fails here."""
        if self._spool_dir is not None:
            self._spool, self._orphans = claim(self._spool_dir, self._spool_max_bytes)
            if self.spooled:
                log.warning("ledger: %d events wait in the spool from an earlier run; replaying", self.spooled)
        try:
            await self._open()
        except LedgerUnavailable as exc:
            if require_database:
                raise
            self._failed(exc)
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def _open(self) -> None:
        if not self._opened:
            await self._bounded(self.backend.open(), "opening the database")
            self._opened = True
            self.state = "spooling" if self.spooled else "ok"

    def record(self, event: UsageEvent) -> None:
        """Queue an event; never blocks, never does I/O."""
        if len(self._events) >= MAX_QUEUE:
            self._events.popleft()
            self._drop(1, "the ledger's memory queue is full (is the database or the spool writable?)")
        self._events.append(event_row(event))
        content = content_row(event)
        if content is not None:
            self._contents.append(content)
        if len(self._events) >= self._batch_size:
            self._wake.set()

    @property
    def queue_depth(self) -> int:
        """Events waiting in memory."""
        return len(self._events)

    @property
    def spooled(self) -> int:
        """Events waiting in the spool on disk."""
        return sum(s.events for s in (*self._orphans, *([self._spool] if self._spool else [])))

    async def _run(self) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._flush_interval + self._backoff)
            self._wake.clear()
            try:
                await self.flush()
            except LedgerUnavailable:
                pass  # counted and logged; the events are in the spool (or memory) for the next round
            except Exception:  # never let the writer die: the next round tries again
                log.exception("ledger writer error; %d events kept for retry", len(self._events))
                self._backoff = MAX_BACKOFF

    async def flush(self) -> None:
        """Write every queued and spooled event now. Raises LedgerUnavailable when the database cannot
        take them (they are then in the spool, when there is one)."""
        async with self._write_lock:
            try:
                await self._open()
                await self._replay()
                await self._drain_memory()
            except LedgerUnavailable as exc:
                self._failed(exc)
                self._spill()
                raise
            if self._backoff:
                log.warning("ledger: %s is writable again; the spool is replayed", self.backend.location)
            self._backoff = 0.0
            self.last_error = None
            self.state = "ok"
            if self._retention is not None and time.time() - self._last_pruned > 3600:
                self._last_pruned = time.time()
                before = (time.time() - self._retention) // 86400 * 86400  # whole days: the rollups stay exact
                deleted = await self.backend.prune(before)
                if deleted:
                    log.info("ledger retention: removed %d events older than the retention period", deleted)

    async def settle(self) -> None:
        """Before a report: write what is queued when the database is healthy, without waiting on one
        that is not (the report then answers from what the database has, or fails on its own)."""
        if self.state == "ok":
            with contextlib.suppress(LedgerUnavailable):
                await self.flush()

    async def _replay(self) -> None:
        """The spools' batches, oldest first, each removed once the database committed it. Events
        queued in memory meanwhile go behind them."""
        spools = [*self._orphans, *([self._spool] if self._spool else [])]
        if not any(s.events or s.peek() for s in spools):
            return
        self.state = "spooling"
        self._spill()
        for spool in spools:
            while (batch := spool.peek()) is not None:
                events, contents, size = batch
                await self._write(events, contents)
                spool.pop(len(events), size)
                await asyncio.sleep(0)  # calls go on while a long spool replays
        for orphan in self._orphans:
            log.info("ledger: replayed the spool left in %s", orphan.directory)
            orphan.close()
        self._orphans = []

    async def _drain_memory(self) -> None:
        while self._events or self._contents:
            events = list(itertools.islice(self._events, self._batch_size))
            contents = list(itertools.islice(self._contents, self._batch_size))
            await self._write(events, contents)
            for _ in events:
                self._events.popleft()
            for _ in contents:
                self._contents.popleft()

    async def _bounded(self, work: Coroutine[Any, Any, T], what: str) -> T:
        """`work`, or LedgerUnavailable after `write_timeout`. A hung database does not answer a
        cancellation either (a transaction's ROLLBACK would wait too), so the backend drops its
        connection instead and the work ends on its own; it is not waited for."""
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=self._write_timeout)
        if not done:
            self.backend.reset()
            task.add_done_callback(_retrieve)
            raise LedgerUnavailable(f"{self.backend.location}: {what} took longer than {self._write_timeout:g}s")
        return task.result()

    async def _write(self, events: Sequence[Row], contents: Sequence[Row]) -> None:
        try:
            await self._bounded(self.backend.write(events, contents), "a batch write")
        except RowsRefused:  # some row the database refuses: write them one by one, drop the bad ones
            for row in events:
                try:
                    await self._bounded(self.backend.write([row], []), "a write")
                except RowsRefused as exc:
                    self._drop(1, f"a row the database refused ({exc})")
            for row in contents:
                try:
                    await self._bounded(self.backend.write([], [row]), "a write")
                except RowsRefused as exc:
                    log.error("ledger: captured content of one call dropped: the database refused it (%s)", exc)
        self.written += len(events)

    def _spill(self) -> None:
        """Move what waits in memory to the spool, behind what is there already."""
        if self._spool is None or not (self._events or self._contents):
            return
        events, contents = list(self._events), list(self._contents)
        try:
            dropped = self._spool.append(events, contents, self._batch_size)
        except OSError as exc:  # the disk is full or gone: keep them in memory, bounded by MAX_QUEUE
            log.error("ledger spool %s cannot be written (%s); %d events wait in memory", self._spool_dir, exc,
                      len(events))  # fmt: skip
            return
        self._events.clear()
        self._contents.clear()
        if dropped:
            self._drop(dropped, f"the spool is full ({self._spool_max_bytes} bytes) or a row cannot be stored")

    def _failed(self, exc: LedgerUnavailable) -> None:
        self.write_failures += 1
        self.state = "spooling" if self._spool is not None else self.state
        first = not self._backoff
        self._backoff = min(MAX_BACKOFF, max(self._flush_interval, self._backoff * 2 or 0.5))
        self.last_error = str(exc)
        if first:
            log.error("ledger: cannot write (%s); events go to the spool and are replayed when it is back", exc)

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        log.error("ledger: %d event(s) dropped: %s", count, why)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """A read-only query (`?` placeholders); 503 when the database cannot answer now."""
        try:
            if not self._opened:
                raise LedgerUnavailable(f"{self.backend.location}: not reached since the start")
            return await self.backend.query(sql, params)
        except LedgerUnavailable as exc:
            log.error("ledger query failed: %s", exc)
            raise ServiceUnavailable("The usage ledger's database cannot be reached right now.") from None

    async def insert(self, sql: str, params: Sequence[Any]) -> int:
        """One INSERT (for rare writes such as feedback); the new row id. 503 when the database is down."""
        try:
            if not self._opened:
                raise LedgerUnavailable(f"{self.backend.location}: not reached since the start")
            return await self.backend.insert(sql, params)
        except LedgerUnavailable as exc:
            log.error("ledger insert failed: %s", exc)
            raise ServiceUnavailable("The usage ledger's database cannot be reached right now.") from None

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        """One writing statement (an INSERT that may conflict, for rare writes); the rows it changed. 503
        when the database is down."""
        try:
            if not self._opened:
                raise LedgerUnavailable(f"{self.backend.location}: not reached since the start")
            return await self.backend.execute(sql, params)
        except LedgerUnavailable as exc:
            log.error("ledger write failed: %s", exc)
            raise ServiceUnavailable("The usage ledger's database cannot be reached right now.") from None

    async def spent_nanos(self, team: str, kind: str, name: str, since: float | None) -> int:
        """The cost (nano-dollars) of one budget scope's calls since `since` (unix seconds; None: ever),
        what a budget lost from the state store is rebuilt from. Events still queued are written first,
        so the answer includes every call this process has finished; while events wait in the spool
        (the database was down) the ledger cannot say, and raises."""
        column = SCOPE_COLUMNS[kind]
        sql = "SELECT COALESCE(SUM(cost_nanos), 0) FROM usage_events WHERE team = ?"
        params: list[Any] = [team]
        if column is not None:
            sql += f" AND {column} = ?"  # a column name from SCOPE_COLUMNS, never the caller's
            params.append(name)
        if since is not None:
            sql += " AND ts >= ?"
            params.append(since)
        if self.state != "ok":
            raise LedgerUnavailable(f"{self.backend.location}: events wait in the spool; the spend is not known")
        await self.flush()
        rows = await self.query(sql, params)
        return int(rows[0][0])

    def describe(self) -> dict[str, Any]:
        """The ledger's state for /readyz: no location, no secret."""
        return {
            "backend": self.backend.kind,
            "state": self.state,
            "queued": self.queue_depth,
            "spooled": self.spooled,
        }

    async def close(self) -> None:
        """Stop the writer and write everything still queued; what the database cannot take now stays
        in the spool for the next start."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task  # it finishes the write in progress rather than being cancelled mid-way
            self._task = None
        try:
            await self.flush()
        except LedgerUnavailable:
            if self.queue_depth:
                self._drop(self.queue_depth, "the database and the spool are both unavailable at shutdown")
            log.error("ledger: %d events stay in the spool %s for the next start", self.spooled, self._spool_dir)
        finally:
            self.state = "closed"
            await self.backend.close()
            for spool in (*self._orphans, *([self._spool] if self._spool else [])):
                spool.close()


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # an abandoned write's outcome: already counted as a failure


def open_ledger(config: LedgerConfig, *, spool: bool = True) -> Ledger:
    """The ledger a `ledger:` section describes (not started). `spool=False` for readers such as
    `agentgw usage`, which write nothing."""
    backend: LedgerBackend
    if config.kind == "postgresql":
        from gateway.metering.postgres_backend import PostgresBackend

        backend = PostgresBackend(config)
    else:
        from gateway.metering.sqlite_backend import SQLiteBackend

        backend = SQLiteBackend(config.path)
    return Ledger(
        backend,
        batch_size=config.batch_size,
        flush_interval=config.flush_interval_ms / 1000,
        retention_days=config.retention_days,
        write_timeout=config.write_timeout_ms / 1000,
        spool_dir=config.spool_path if spool else None,
        spool_max_bytes=config.spool_max_mb * 1024 * 1024,
    )
