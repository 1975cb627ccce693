"""The ledger's rows (how an event becomes one, shared by both backends), the rollups, and the SQLite
tables with their migrations (PostgreSQL's are in `postgres_schema`)."""

from __future__ import annotations

import functools
import operator
import sqlite3
from collections.abc import Sequence
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
    # 4: request ids unique, so a batch written twice (a spool replayed after a crash) lands once;
    # rows of an old file that share one keep it with their row id appended. The hourly and daily
    # rollups, filled from what the file holds.
    """
    UPDATE usage_events SET request_id = request_id || '#' || id
        WHERE id NOT IN (SELECT MIN(id) FROM usage_events GROUP BY request_id);
    DROP INDEX usage_events_request;
    CREATE UNIQUE INDEX usage_events_request ON usage_events (request_id);
    CREATE TABLE usage_rollup (
        bucket INTEGER NOT NULL,
        team TEXT NOT NULL, agent TEXT NOT NULL, key_name TEXT NOT NULL, model TEXT NOT NULL,
        provider TEXT NOT NULL, route TEXT NOT NULL, operation TEXT NOT NULL,
        requests INTEGER NOT NULL, errors INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,
        cost_nanos INTEGER NOT NULL,
        PRIMARY KEY (bucket, team, agent, key_name, model, provider, route, operation)
    ) WITHOUT ROWID;
    CREATE TABLE usage_rollup_daily (
        bucket INTEGER NOT NULL,
        team TEXT NOT NULL, agent TEXT NOT NULL, key_name TEXT NOT NULL, model TEXT NOT NULL,
        provider TEXT NOT NULL, route TEXT NOT NULL, operation TEXT NOT NULL,
        requests INTEGER NOT NULL, errors INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,
        cost_nanos INTEGER NOT NULL,
        PRIMARY KEY (bucket, team, agent, key_name, model, provider, route, operation)
    ) WITHOUT ROWID;
    INSERT INTO usage_rollup
        SELECT CAST(ts / 3600 AS INTEGER) * 3600, team, agent, key_name, COALESCE(model, ''),
            COALESCE(provider, ''), COALESCE(route, ''), operation, COUNT(*),
            SUM(CASE WHEN outcome IN ('error', 'shutdown') THEN 1 ELSE 0 END), SUM(input_tokens),
            SUM(output_tokens), SUM(cached_tokens), SUM(reasoning_tokens), SUM(cost_nanos)
        FROM usage_events GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
    INSERT INTO usage_rollup_daily
        SELECT bucket / 86400 * 86400, team, agent, key_name, model, provider, route, operation, SUM(requests),
            SUM(errors), SUM(input_tokens), SUM(output_tokens), SUM(cached_tokens), SUM(reasoning_tokens),
            SUM(cost_nanos)
        FROM usage_rollup GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
    """,
    # 5 (issue 19, the MCP gateway): tool calls are events too, with operation `tool_call`; they name
    # the upstream server and its tool, and the bytes of the tool's arguments and result (NULL for
    # model calls). Reports by server or tool read the events (the rollups do not keep them).
    """
    ALTER TABLE usage_events ADD COLUMN server TEXT;
    ALTER TABLE usage_events ADD COLUMN tool TEXT;
    ALTER TABLE usage_events ADD COLUMN bytes_in INTEGER;
    ALTER TABLE usage_events ADD COLUMN bytes_out INTEGER;
    """,
    # 6, agentops (issue 17): each call's workflow version; versions as first seen, eval runs and the scores
    # of judged calls and eval cases, anomalies raised (`gateway.agentops`). Reports by version read the
    # events, like reports by task.
    """
    ALTER TABLE usage_events ADD COLUMN agent_version TEXT;
    CREATE TABLE agent_versions (
        team TEXT NOT NULL, agent TEXT NOT NULL, version TEXT NOT NULL, first_seen REAL NOT NULL,
        source TEXT NOT NULL, model TEXT, guardrails TEXT NOT NULL, tools TEXT NOT NULL,
        prompt_digest TEXT, prompt_chars INTEGER, prompt TEXT,
        PRIMARY KEY (team, agent, version)
    );
    CREATE INDEX agent_versions_seen ON agent_versions (first_seen);
    CREATE TABLE eval_runs (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, run_id TEXT NOT NULL, variant TEXT NOT NULL,
        name TEXT, key_name TEXT NOT NULL, team TEXT NOT NULL, agent TEXT NOT NULL, agent_version TEXT,
        model TEXT NOT NULL, cases INTEGER NOT NULL, passed_cases INTEGER NOT NULL, errors INTEGER NOT NULL,
        pass_rate REAL NOT NULL, mean_score REAL, cost_nanos INTEGER NOT NULL, latency_p50_ms REAL,
        latency_p95_ms REAL, gates TEXT NOT NULL, passed INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX eval_runs_run ON eval_runs (run_id, variant);
    CREATE INDEX eval_runs_version ON eval_runs (team, agent_version, ts);
    CREATE TABLE eval_scores (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, kind TEXT NOT NULL, request_id TEXT, key_name TEXT NOT NULL,
        team TEXT NOT NULL, agent TEXT NOT NULL, agent_version TEXT, run_id TEXT, case_id TEXT,
        judge_model TEXT, judge_request_id TEXT, score REAL, passed INTEGER, detail TEXT
    );
    CREATE INDEX eval_scores_ts ON eval_scores (ts);
    CREATE INDEX eval_scores_run ON eval_scores (run_id);
    CREATE TABLE anomalies (
        id INTEGER PRIMARY KEY, ts REAL NOT NULL, team TEXT NOT NULL, agent TEXT NOT NULL,
        agent_version TEXT NOT NULL, series TEXT NOT NULL, window_start REAL NOT NULL, window_end REAL NOT NULL,
        value REAL NOT NULL, baseline REAL NOT NULL, stddev REAL NOT NULL, z REAL NOT NULL
    );
    CREATE UNIQUE INDEX anomalies_window ON anomalies (team, agent, agent_version, series, window_start);
    CREATE INDEX anomalies_ts ON anomalies (ts);
    """,
    # 7: the session and task indexes leave out the calls without one (most calls name neither, and every
    # query by either names one, which SQLite sees implies the index's condition): a call that names
    # neither updates two indexes fewer when it is written.
    """
    DROP INDEX usage_events_session;
    CREATE INDEX usage_events_session ON usage_events (session, ts) WHERE session IS NOT NULL;
    DROP INDEX usage_events_task;
    CREATE INDEX usage_events_task ON usage_events (team, task, ts) WHERE task IS NOT NULL;
    """,
)

# The column each budget scope kind is summed by (besides the team), for `Ledger.spent_nanos`.
SCOPE_COLUMNS = {"team": None, "key": "key_name", "key_agents": "key_name", "agent": "agent", "task": "task"}

COLUMNS_V1 = (
    "ts", "request_id", "trace_id", "key_name", "team", "agent", "task", "session", "tags", "route",
    "requested_model", "model", "provider", "operation", "stream", "status", "outcome", "error_type",
    "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens", "estimated",
    "cost_nanos", "latency_ms", "ttft_ms", "attempts", "attempt_log", "guardrails", "client_request_id",
)  # fmt: skip
# The columns a write fills, in order: the first schema's (COLUMNS_V1, which PostgreSQL's first migration
# creates and must keep creating), then those later migrations added.
COLUMNS = (*COLUMNS_V1, "server", "tool", "bytes_in", "bytes_out", "agent_version")
# The rollups behind fast reports: one row per hour (usage_rollup) or UTC day (usage_rollup_daily) and
# combination of these dimensions (NULL stored as ''), summed. Only rows a write really inserted are
# added, so a repeated write adds nothing.
ROLLUPS = {"usage_rollup": 3600, "usage_rollup_daily": 86400}
_SHORTEST = min(ROLLUPS.values())  # each bucket is a whole number of the shortest
ROLLUP_DIMENSIONS = ("team", "agent", "key_name", "model", "provider", "route", "operation")
ROLLUP_METRICS = ("requests", "errors", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens",
                  "cost_nanos")  # fmt: skip
PRUNED_BY_TS = ("eval_runs", "eval_scores", "anomalies")  # retention deletes these by their `ts` too
ERROR_OUTCOMES = ("error", "shutdown")  # what the report counts as errors
ROWS_PER_INSERT = 25  # one INSERT binds 36 x 25 parameters: the GIL is held for tens of microseconds


def migrate(db: sqlite3.Connection) -> None:
    """Bring a ledger file to the current schema, one migration per transaction. Each takes the write
    lock first and reads the version again, so processes sharing the file (--workers) apply it once."""
    for number, script in enumerate(MIGRATIONS, 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise RuntimeError(
                    f"the ledger file is from a newer agentgw (schema {version}); refusing to write to it"
                )
            if version < number:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


@functools.lru_cache(maxsize=ROWS_PER_INSERT)
def insert_events(rows: int) -> str:
    """A multi-row INSERT that skips request ids already stored."""
    values = ", ".join(["(" + ", ".join("?" * len(COLUMNS)) + ")"] * rows)
    return (
        f"INSERT INTO usage_events ({', '.join(COLUMNS)}) VALUES {values} "  # noqa: S608 - constants only
        "ON CONFLICT (request_id) DO NOTHING"
    )


INSERT_CONTENT = (
    "INSERT INTO call_content (request_id, ts, input_messages, output_messages) VALUES (?,?,?,?) "
    "ON CONFLICT (request_id) DO NOTHING"
)
_ROLLUP_KEY = ("bucket", *ROLLUP_DIMENSIONS)


def upsert_rollup(table: str) -> str:
    return (
        f"INSERT INTO {table} AS r ({', '.join((*_ROLLUP_KEY, *ROLLUP_METRICS))}) "  # noqa: S608 - constants
        f"VALUES ({', '.join('?' * (len(_ROLLUP_KEY) + len(ROLLUP_METRICS)))}) "
        f"ON CONFLICT ({', '.join(_ROLLUP_KEY)}) DO UPDATE SET "
        + ", ".join(f"{m} = r.{m} + excluded.{m}" for m in ROLLUP_METRICS)
    )


_AT = {name: COLUMNS.index(name) for name in COLUMNS}
# Per row, only the bucket and the grouping are Python: the dimensions and the summed columns are
# picked out, and summed per group, by C (itemgetter, zip, sum).
_DIMENSIONS = operator.itemgetter(*(_AT[d] for d in ROLLUP_DIMENSIONS))
_OUTCOME_AND_SUMMED = operator.itemgetter(
    *(_AT[c] for c in ("outcome", "input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "cost_nanos"))
)


def rollup_rows(events: Sequence[Row]) -> dict[str, list[Row]]:
    """The rollup increments of these event rows, per rollup table: per bucket and dimensions, the sums.
    The rows are grouped once, by the shortest bucket; a longer one (a whole number of those) sums them."""
    ts = _AT["ts"]
    groups: dict[tuple[int, Row], list[Row]] = {}
    for row in events:
        key = (int(row[ts] // _SHORTEST) * _SHORTEST, _DIMENSIONS(row))
        group = groups.get(key)
        if group is None:
            groups[key] = [row]
        else:
            group.append(row)
    shortest: dict[Row, list[int]] = {}
    for (bucket, dimensions), rows in groups.items():
        outcomes, *summed = zip(*map(_OUTCOME_AND_SUMMED, rows), strict=True)
        increments = [len(rows), sum(map(ERROR_OUTCOMES.__contains__, outcomes)), *map(sum, summed)]
        _add(shortest, (bucket, *(value or "" for value in dimensions)), increments)  # NULL stored as ''
    out = {}
    for table, seconds in ROLLUPS.items():
        sums = shortest
        if seconds != _SHORTEST:
            sums = {}
            for (start, *rest), increments in shortest.items():
                _add(sums, (start // seconds * seconds, *rest), increments)
        out[table] = [(*key, *total) for key, total in sorted(sums.items())]
    return out


def _add(sums: dict[Row, list[int]], key: Row, increments: list[int]) -> None:
    total = sums.get(key)
    sums[key] = increments if total is None else [a + b for a, b in zip(total, increments, strict=True)]


def event_row(e: UsageEvent) -> Row:
    u = e.usage
    return (
        e.ts, e.request_id, e.trace_id, e.key_name, e.team, e.agent, e.task, e.session,
        orjson.dumps(dict(e.tags)).decode(), e.route, e.requested_model, e.model, e.provider, e.operation,
        int(e.stream), e.status, e.outcome, e.error_type, u.input_tokens, u.output_tokens, u.cached_tokens,
        u.cache_write_tokens, u.reasoning_tokens, int(u.estimated), e.cost_nanos, round(e.latency_ms, 3),
        None if e.ttft_ms is None else round(e.ttft_ms, 3), e.attempts, orjson.dumps(e.attempt_log).decode(),
        orjson.dumps(e.guardrails).decode(), e.client_request_id, e.server, e.tool, e.bytes_in, e.bytes_out,
        e.agent_version,
    )  # fmt: skip


def content_row(e: UsageEvent) -> Row | None:
    if e.input_messages is None and e.output_messages is None:
        return None
    return (e.request_id, e.ts, e.input_messages, e.output_messages)
