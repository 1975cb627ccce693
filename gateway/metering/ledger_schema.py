"""The ledger's tables, their migrations, and how an event becomes a row."""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

import orjson

from gateway.metering.events import UsageEvent

Row = tuple[Any, ...]

# Each entry brings a database from the version before it to its own; `PRAGMA user_version` says
# where a file stands. Append, never edit: files in the field have already run the earlier ones.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE usage_events (
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
        attempt_log TEXT NOT NULL,
        guardrails TEXT NOT NULL
    );
    CREATE INDEX usage_events_ts ON usage_events (ts);
    CREATE INDEX usage_events_session ON usage_events (session, ts);
    CREATE INDEX usage_events_request ON usage_events (request_id);
    CREATE TABLE call_content (
        request_id TEXT PRIMARY KEY,
        ts REAL NOT NULL,
        input_messages TEXT,
        output_messages TEXT
    );
    CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        key_name TEXT NOT NULL,
        request_id TEXT,
        session TEXT,
        task TEXT,
        score REAL,
        label TEXT,
        comment TEXT
    );
    CREATE INDEX feedback_request ON feedback (request_id);
    """,
    """
    ALTER TABLE usage_events ADD COLUMN client_request_id TEXT;
    ALTER TABLE feedback ADD COLUMN team TEXT;
    DELETE FROM call_content WHERE request_id IN (
        SELECT request_id FROM usage_events GROUP BY request_id HAVING COUNT(*) > 1);
    """,
    # Budgets rebuilt from the ledger sum one scope's cost since a moment (`Ledger.spent_nanos`).
    """
    CREATE INDEX usage_events_team ON usage_events (team, ts);
    CREATE INDEX usage_events_key ON usage_events (team, key_name, ts);
    CREATE INDEX usage_events_agent ON usage_events (team, agent, ts);
    CREATE INDEX usage_events_task ON usage_events (team, task, ts);
    """,
)

# The column each budget scope kind is summed by (besides the team), for `Ledger.spent_nanos`.
SCOPE_COLUMNS = {"team": None, "key": "key_name", "key_agents": "key_name", "agent": "agent", "task": "task"}

COLUMNS = (
    "ts", "request_id", "trace_id", "key_name", "team", "agent", "task", "session", "tags", "route",
    "requested_model", "model", "provider", "operation", "stream", "status", "outcome", "error_type",
    "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens", "estimated",
    "cost_nanos", "latency_ms", "ttft_ms", "attempts", "attempt_log", "guardrails", "client_request_id",
)  # fmt: skip
ROWS_PER_INSERT = 25  # one INSERT binds 30 x 25 parameters: the GIL is held for tens of microseconds


def migrate(db: sqlite3.Connection) -> None:
    """Bring a ledger file to the current schema, one migration per transaction."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise RuntimeError(f"the ledger file is from a newer agentgw (schema {version}); refusing to write to it")
    for number, script in enumerate(MIGRATIONS[version:], version + 1):
        db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")


@functools.lru_cache(maxsize=ROWS_PER_INSERT)
def insert_events(rows: int) -> str:
    values = ", ".join(["(" + ", ".join("?" * len(COLUMNS)) + ")"] * rows)
    return f"INSERT INTO usage_events ({', '.join(COLUMNS)}) VALUES {values}"  # noqa: S608 - constants only


INSERT_CONTENT = "INSERT INTO call_content (request_id, ts, input_messages, output_messages) VALUES (?,?,?,?)"


def event_row(e: UsageEvent) -> Row:
    u = e.usage
    return (
        e.ts, e.request_id, e.trace_id, e.key_name, e.team, e.agent, e.task, e.session,
        orjson.dumps(dict(e.tags)).decode(), e.route, e.requested_model, e.model, e.provider, e.operation,
        int(e.stream), e.status, e.outcome, e.error_type, u.input_tokens, u.output_tokens, u.cached_tokens,
        u.cache_write_tokens, u.reasoning_tokens, int(u.estimated), e.cost_nanos, round(e.latency_ms, 3),
        None if e.ttft_ms is None else round(e.ttft_ms, 3), e.attempts, orjson.dumps(e.attempt_log).decode(),
        orjson.dumps(e.guardrails).decode(), e.client_request_id,
    )  # fmt: skip


def content_row(e: UsageEvent) -> Row | None:
    if e.input_messages is None and e.output_messages is None:
        return None
    return (e.request_id, e.ts, e.input_messages, e.output_messages)
