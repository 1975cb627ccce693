"""The fleet ledger: one PostgreSQL database for every replica, through asyncpg.

asyncpg was chosen by measurement (bench/ledger_pg_drivers.py): its binary COPY wrote the most events
per second for the least CPU in the gateway's process, and it runs on the event loop, so no writer
thread competes with the request path for the GIL. A batch is COPYed into a temporary staging table
and moved into `usage_events` by one statement that skips request ids already stored and adds only
the rows it inserted to the rollups: a batch written twice (replayed after a crash between the
commit and its acknowledgement) lands once. The writer keeps one connection of its own; reports use a
small pool with a statement timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import ssl
from collections.abc import Sequence
from typing import Any, Literal

import asyncpg

from gateway.metering.backend import LedgerBackend, LedgerUnavailable, Row, RowsRefused
from gateway.metering.config import LedgerConfig
from gateway.metering.ledger_schema import COLUMNS, PRUNED_BY_TS, ROLLUPS
from gateway.metering.postgres_schema import INSERT_CONTENT, INSERT_STAGED, MIGRATION_LOCK, MIGRATIONS, STAGING

# What says the rows are at fault (write them one by one), not the database.
_ROW_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, OverflowError, ValueError, TypeError)


class PostgresBackend(LedgerBackend):
    kind: Literal["sqlite", "postgresql"] = "postgresql"

    def __init__(self, config: LedgerConfig) -> None:
        assert config.url is not None
        self._config = config
        self._writer: asyncpg.Connection | None = None
        self._pool: asyncpg.Pool | None = None
        self._timeout = config.connect_timeout_ms / 1000

    @property
    def location(self) -> str:
        return self._config.location

    def bucket(self, unit: Literal["day", "hour"], column: str) -> str:
        pattern = "YYYY-MM-DD" if unit == "day" else 'YYYY-MM-DD"T"HH24":00:00Z"'
        return f"to_char(to_timestamp({column}) AT TIME ZONE 'UTC', '{pattern}')"

    def _unavailable(self, exc: BaseException) -> LedgerUnavailable:
        detail = str(exc) or type(exc).__name__
        return LedgerUnavailable(f"PostgreSQL ledger {self.location}: {type(exc).__name__}: {detail}")

    def _connect_options(self) -> dict[str, Any]:
        config = self._config
        options: dict[str, Any] = {"timeout": self._timeout}
        if config.tls is not None:
            if config.tls in ("verify-ca", "verify-full") and config.tls_root_cert:
                context = ssl.create_default_context(cafile=config.tls_root_cert)
                context.check_hostname = config.tls == "verify-full"
                options["ssl"] = context
            else:
                options["ssl"] = config.tls
        return options

    async def _connect(self, **settings: str) -> asyncpg.Connection:
        server_settings = {"application_name": "agentgw", **settings}
        try:
            conn: asyncpg.Connection = await asyncio.wait_for(
                asyncpg.connect(self._config.url, server_settings=server_settings, **self._connect_options()),
                self._timeout,
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise self._unavailable(exc) from None
        return conn

    async def open(self) -> None:
        writer = self._writer = await self._connect()  # reset() can drop it while migrations wait
        try:
            await migrate(writer)
            await writer.execute(STAGING)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            writer.terminate()
            self._writer = None
            raise self._unavailable(exc) from None
        if self._pool is None:
            try:
                self._pool = await asyncpg.create_pool(
                    self._config.url,
                    min_size=0,
                    max_size=self._config.pool_size,
                    server_settings={
                        "application_name": "agentgw-reports",
                        "statement_timeout": str(self._config.statement_timeout_ms),
                    },
                    **self._connect_options(),
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise self._unavailable(exc) from None

    async def _writer_connection(self) -> asyncpg.Connection:
        if self._writer is None or self._writer.is_closed():
            self._writer = None
            await self.open()
        assert self._writer is not None
        return self._writer

    def reset(self) -> None:
        """Drop the writer's connection at once (a write timed out on a hung server); the next write
        connects anew."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.terminate()

    async def write(self, events: Sequence[Row], contents: Sequence[Row]) -> int:
        conn = await self._writer_connection()
        try:
            async with conn.transaction():
                inserted = 0
                if events:
                    await conn.copy_records_to_table("ledger_staging", records=events, columns=list(COLUMNS))
                    inserted = int(await conn.fetchval(INSERT_STAGED))
                if contents:
                    await conn.executemany(INSERT_CONTENT, contents)
            return inserted
        except _ROW_ERRORS as exc:
            raise RowsRefused(f"{type(exc).__name__}: {exc}") from exc
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self.reset()
            raise self._unavailable(exc) from None

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        rows: list[Any] = await self._on_pool("fetch", numbered(sql), params)
        return rows

    async def insert(self, sql: str, params: Sequence[Any]) -> int:
        return int(await self._on_pool("fetchval", numbered(sql) + " RETURNING id", params))

    async def _on_pool(self, method: str, sql: str, params: Sequence[Any]) -> Any:
        """Run on a pooled connection; once more on a fresh one when the pooled one died with a
        restarted server (the pool hands out connections it has not yet seen closed). A server that
        does not answer within the statement timeout (hung: it would not enforce its own) has the
        connection dropped under the query, which then fails at once."""
        if self._pool is None:
            raise LedgerUnavailable(f"PostgreSQL ledger {self.location}: not connected yet")
        limit = self._config.statement_timeout_ms / 1000 + self._timeout
        for attempt in (1, 2):
            try:
                conn = await self._pool.acquire(timeout=self._timeout)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise self._unavailable(exc) from None
            try:
                task = asyncio.ensure_future(getattr(conn, method)(sql, *params))
                done, _ = await asyncio.wait({task}, timeout=limit)
                if not done:
                    conn.terminate()
                    with contextlib.suppress(BaseException):
                        await task
                    raise TimeoutError(f"no answer within {limit:g}s")
                return task.result()
            except (asyncpg.ConnectionDoesNotExistError, asyncpg.InterfaceError, asyncpg.AdminShutdownError) as exc:
                if attempt == 2:
                    raise self._unavailable(exc) from None
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                raise self._unavailable(exc) from None
            finally:
                with contextlib.suppress(OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    await asyncio.wait_for(self._pool.release(conn), self._timeout)
        raise AssertionError("unreachable")

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        status = await self._on_pool("execute", numbered(sql), params)
        return int(str(status).rsplit(" ", 1)[-1] or 0)  # "INSERT 0 1", "UPDATE 3"

    def interval(self, seconds: int, column: str) -> str:
        return f"(floor({column} / {int(seconds)}) * {int(seconds)})::int8"

    async def prune(self, before: float) -> int:
        conn = await self._writer_connection()
        try:
            async with conn.transaction():
                status = await conn.execute("DELETE FROM usage_events WHERE ts < $1", before)
                for table in ROLLUPS:
                    await conn.execute(f"DELETE FROM {table} WHERE bucket < $1", int(before))  # noqa: S608
                await conn.execute("DELETE FROM call_content WHERE ts < $1", before)
                await conn.execute("DELETE FROM feedback WHERE ts < $1", before)
                for table in PRUNED_BY_TS:
                    await conn.execute(f"DELETE FROM {table} WHERE ts < $1", before)  # noqa: S608 - constants
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            self.reset()
            raise self._unavailable(exc) from None
        return int(str(status).rsplit(" ", 1)[-1] or 0)

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        pool, self._pool = self._pool, None
        if writer is not None:
            try:
                await asyncio.wait_for(writer.close(), self._timeout)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                writer.terminate()
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), self._timeout)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pool.terminate()


async def migrate(conn: asyncpg.Connection) -> None:
    """Bring the database to this version's schema, one migration per transaction, under an advisory
    lock: replicas starting together wait for each other, and each migration runs once."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS agentgw_schema (version int NOT NULL)")
        version = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM agentgw_schema"))
        if version > len(MIGRATIONS):
            raise RuntimeError(f"the ledger database is from a newer agentgw (schema {version}); refusing to write")
        for number, script in enumerate(MIGRATIONS[version:], version + 1):
            async with conn.transaction():
                await conn.execute(script)
                await conn.execute("INSERT INTO agentgw_schema (version) VALUES ($1)", number)
    finally:
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)


_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=256)
def numbered(sql: str) -> str:
    """`?` placeholders (the ledger's shared SQL) as PostgreSQL's `$1, $2, ...`."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)
