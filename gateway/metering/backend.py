"""The ledger's storage contract: one small interface, a SQLite and a PostgreSQL implementation.

`gateway.metering.ledger.Ledger` owns the queue, the batching, the spool and the retries; a backend
only opens its database (applying migrations), writes a batch idempotently, and runs the queries of
the report endpoints. SQL is shared: `?` placeholders, standard functions; where the dialects must
differ (time buckets), the backend says (`bucket`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Literal

Row = tuple[Any, ...]


class LedgerUnavailable(Exception):
    """The database cannot be reached or written now (down, hung, restarting, locked): the rows are
    kept and written later. The message names no secret."""


class RowsRefused(Exception):
    """The database refused some row of a batch (a value out of range): write them one by one."""


class LedgerBackend(ABC):
    kind: Literal["sqlite", "postgresql"]

    @abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema to this version (safe when several processes do it at once)."""

    @abstractmethod
    async def write(self, events: Sequence[Row], contents: Sequence[Row]) -> int:
        """Write event and content rows in one transaction; rows whose request_id is already stored are
        skipped (a batch written twice lands once), and only rows really inserted feed the rollup.
        Returns the number of events inserted. Raises LedgerUnavailable or RowsRefused."""

    @abstractmethod
    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows (indexable by position and by column name) of a read-only query with `?` placeholders."""

    @abstractmethod
    async def insert(self, sql: str, params: Sequence[Any]) -> int:
        """One INSERT into a table with an `id` column; the new row's id."""

    @abstractmethod
    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        """One writing statement (`INSERT ... ON CONFLICT DO NOTHING`, an UPDATE); the rows it changed."""

    @abstractmethod
    async def prune(self, before: float) -> int:
        """Delete what is older than `before` (a day boundary, so the rollups stay exact)."""

    @abstractmethod
    async def close(self) -> None: ...

    def reset(self) -> None:  # noqa: B027 - most backends have nothing to drop
        """A write timed out: drop what may be stuck (a connection to a hung server)."""

    @abstractmethod
    def bucket(self, unit: Literal["day", "hour"], column: str) -> str:
        """SQL for the UTC day (`2026-01-31`) or hour (`2026-01-31T13:00:00Z`) of a unix-seconds column."""

    @abstractmethod
    def interval(self, seconds: int, column: str) -> str:
        """SQL for the start (unix seconds, an integer) of the `seconds`-long interval holding a column's time."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the data lives, safe to log (no password)."""
