"""The PostgreSQL ledger's tables and their versioned migrations.

The same tables and the same meaning as the SQLite ledger (`ledger_schema`): one row per call in
`usage_events` (request_id unique: a write that is repeated after a crash lands once), captured content
in `call_content`, feedback in `feedback`, and the hourly and daily rollups that keep reports fast. The
dialects differ only in types: identity ids, 64-bit counters, double precision times.

`agentgw_schema` says where a database stands. Migrations run at start under an advisory lock, so
replicas starting together apply each one exactly once. Append, never edit.
"""

from __future__ import annotations

from gateway.metering.ledger_schema import COLUMNS, COLUMNS_V1, ROLLUP_DIMENSIONS, ROLLUP_METRICS, ROLLUPS

PG_TYPES: dict[str, str] = {
    **{name: "text" for name in COLUMNS},
    "ts": "float8",
    "stream": "int4",
    "status": "int4",
    "input_tokens": "int8",
    "output_tokens": "int8",
    "cached_tokens": "int8",
    "cache_write_tokens": "int8",
    "reasoning_tokens": "int8",
    "estimated": "int4",
    "cost_nanos": "int8",
    "latency_ms": "float8",
    "ttft_ms": "float8",
    "attempts": "int4",
    "bytes_in": "int8",
    "bytes_out": "int8",
}
NOT_NULL = {
    "ts", "request_id", "key_name", "team", "agent", "tags", "requested_model", "operation", "stream", "status",
    "outcome", "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens",
    "estimated", "cost_nanos", "latency_ms", "attempts", "attempt_log", "guardrails",
}  # fmt: skip

# Any fixed number: the lock every replica takes around migrations ("agentgw" in ASCII).
MIGRATION_LOCK = 0x6167656E74677700

# The first migration creates the first schema's columns (never more: later ones add theirs).
_EVENT_COLUMNS = ",\n    ".join(f"{c} {PG_TYPES[c]}{' NOT NULL' if c in NOT_NULL else ''}" for c in COLUMNS_V1)
_ROLLUP_COLUMNS = ",\n    ".join(
    [f"{d} text NOT NULL" for d in ROLLUP_DIMENSIONS] + [f"{m} int8 NOT NULL" for m in ROLLUP_METRICS]
)

MIGRATIONS: tuple[str, ...] = (
    f"""
CREATE TABLE usage_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    {_EVENT_COLUMNS}
);
CREATE UNIQUE INDEX usage_events_request ON usage_events (request_id);
CREATE INDEX usage_events_ts ON usage_events (ts);
CREATE INDEX usage_events_session ON usage_events (session, ts);
CREATE INDEX usage_events_team ON usage_events (team, ts);
CREATE INDEX usage_events_key ON usage_events (team, key_name, ts);
CREATE INDEX usage_events_agent ON usage_events (team, agent, ts);
CREATE INDEX usage_events_task ON usage_events (team, task, ts);
CREATE TABLE call_content (
    request_id text PRIMARY KEY,
    ts float8 NOT NULL,
    input_messages text,
    output_messages text
);
CREATE INDEX call_content_ts ON call_content (ts);
CREATE TABLE feedback (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts float8 NOT NULL,
    key_name text NOT NULL,
    team text,
    request_id text,
    session text,
    task text,
    score float8,
    label text,
    comment text
);
CREATE INDEX feedback_request ON feedback (request_id);
CREATE TABLE usage_rollup (
    bucket int8 NOT NULL,
    {_ROLLUP_COLUMNS},
    PRIMARY KEY (bucket, {", ".join(ROLLUP_DIMENSIONS)})
);
CREATE TABLE usage_rollup_daily (
    bucket int8 NOT NULL,
    {_ROLLUP_COLUMNS},
    PRIMARY KEY (bucket, {", ".join(ROLLUP_DIMENSIONS)})
);
""",
    # 2 (issue 19, the MCP gateway): tool calls' server, tool, and bytes of arguments and result.
    """
ALTER TABLE usage_events ADD COLUMN server text;
ALTER TABLE usage_events ADD COLUMN tool text;
ALTER TABLE usage_events ADD COLUMN bytes_in int8;
ALTER TABLE usage_events ADD COLUMN bytes_out int8;
""",
    # 3, agentops (issue 17): as SQLite's migration 6 (`ledger_schema`).
    """
ALTER TABLE usage_events ADD COLUMN agent_version text;
CREATE TABLE agent_versions (
    team text NOT NULL, agent text NOT NULL, version text NOT NULL, first_seen float8 NOT NULL,
    source text NOT NULL, model text, guardrails text NOT NULL, tools text NOT NULL,
    prompt_digest text, prompt_chars int8, prompt text,
    PRIMARY KEY (team, agent, version)
);
CREATE INDEX agent_versions_seen ON agent_versions (first_seen);
CREATE TABLE eval_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ts float8 NOT NULL, run_id text NOT NULL,
    variant text NOT NULL, name text, key_name text NOT NULL, team text NOT NULL, agent text NOT NULL,
    agent_version text, model text NOT NULL, cases int8 NOT NULL, passed_cases int8 NOT NULL,
    errors int8 NOT NULL, pass_rate float8 NOT NULL, mean_score float8, cost_nanos int8 NOT NULL,
    latency_p50_ms float8, latency_p95_ms float8, gates text NOT NULL, passed int4 NOT NULL
);
CREATE UNIQUE INDEX eval_runs_run ON eval_runs (run_id, variant);
CREATE INDEX eval_runs_version ON eval_runs (team, agent_version, ts);
CREATE TABLE eval_scores (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ts float8 NOT NULL, kind text NOT NULL,
    request_id text, key_name text NOT NULL, team text NOT NULL, agent text NOT NULL, agent_version text,
    run_id text, case_id text, judge_model text, judge_request_id text, score float8, passed int4, detail text
);
CREATE INDEX eval_scores_ts ON eval_scores (ts);
CREATE INDEX eval_scores_run ON eval_scores (run_id);
CREATE TABLE anomalies (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, ts float8 NOT NULL, team text NOT NULL,
    agent text NOT NULL, agent_version text NOT NULL, series text NOT NULL, window_start float8 NOT NULL,
    window_end float8 NOT NULL, value float8 NOT NULL, baseline float8 NOT NULL, stddev float8 NOT NULL,
    z float8 NOT NULL
);
CREATE UNIQUE INDEX anomalies_window ON anomalies (team, agent, agent_version, series, window_start);
CREATE INDEX anomalies_ts ON anomalies (ts);
""",
)


def migrate_sql() -> list[str]:
    """Every migration as statements, for a fresh database (benchmarks; the ledger uses `migrate`)."""
    return [
        "CREATE TABLE IF NOT EXISTS agentgw_schema (version int NOT NULL)",
        *[s.strip() for script in MIGRATIONS for s in script.split(";") if s.strip()],
    ]


_COLS = ", ".join(COLUMNS)
_KEY = ("bucket", *ROLLUP_DIMENSIONS)
_POSITIONS = ", ".join(str(i) for i in range(1, len(_KEY) + 1))


def _rollup(table: str, seconds: int) -> str:
    return f"""{table}_added AS (
INSERT INTO {table} AS r ({", ".join((*_KEY, *ROLLUP_METRICS))})
SELECT (floor(ts / {seconds}) * {seconds})::int8, {", ".join(f"coalesce({d}, '')" for d in ROLLUP_DIMENSIONS)},
    count(*), count(*) FILTER (WHERE outcome IN ('error', 'shutdown')), sum(input_tokens), sum(output_tokens),
    sum(cached_tokens), sum(reasoning_tokens), sum(cost_nanos)
FROM inserted GROUP BY {_POSITIONS} ORDER BY {_POSITIONS}
ON CONFLICT ({", ".join(_KEY)}) DO UPDATE SET {", ".join(f"{m} = r.{m} + excluded.{m}" for m in ROLLUP_METRICS)}
RETURNING 1
)"""  # noqa: S608 - constants only


STAGING = f"CREATE TEMP TABLE ledger_staging ON COMMIT DELETE ROWS AS SELECT {_COLS} FROM usage_events WITH NO DATA"  # noqa: S608
# One statement per batch: the staged rows not yet stored go in, and only those feed the rollups (in key
# order, so two replicas adding to the same rollup rows lock them in the same order).
INSERT_STAGED = f"""
WITH inserted AS (
    INSERT INTO usage_events ({_COLS}) SELECT {_COLS} FROM ledger_staging
    ON CONFLICT (request_id) DO NOTHING
    RETURNING ts, {", ".join(ROLLUP_DIMENSIONS)}, outcome, input_tokens, output_tokens, cached_tokens,
        reasoning_tokens, cost_nanos
), {", ".join(_rollup(table, seconds) for table, seconds in ROLLUPS.items())}
SELECT count(*) FROM inserted
"""  # noqa: S608 - constants only
INSERT_CONTENT = (
    "INSERT INTO call_content (request_id, ts, input_messages, output_messages) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (request_id) DO NOTHING"
)
