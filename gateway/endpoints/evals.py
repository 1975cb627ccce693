"""POST /v1/evals/runs and GET /v1/evals/runs: eval runs' results, kept per agent version.

`agentgw eval run` posts what it found (per variant: the model, the version the gateway gave its
calls, pass rate, cost, latency, the gates, and every case's result); the gateway keeps a row per
variant in `eval_runs` and one per case in `eval_scores` (kind `offline`), under the posting key's
team and agent. `GET /v1/agents` shows them beside the versions they evaluated.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.endpoints.intake import identify, read_json, runtime_of
from gateway.endpoints.sessions import require_ledger
from gateway.endpoints.window import bounded_int, scoped_query
from gateway.errors import InvalidRequest
from gateway.metering.report import iso
from gateway.schemas import validate

Id = Annotated[str, Field(min_length=1, max_length=128)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=False)


class CaseIn(_In):
    case_id: Id
    passed: bool
    score: float | None = None
    request_id: str | None = Field(default=None, max_length=128)
    agent_version: str | None = Field(default=None, max_length=128)
    cost_usd: float = Field(default=0.0, ge=0)
    latency_ms: float | None = None
    error: str | None = Field(default=None, max_length=1000)
    checks: list[dict[str, Any]] = Field(default_factory=list, max_length=100)


class VariantIn(_In):
    variant: Literal["candidate", "baseline"]
    model: Id
    agent_version: str | None = Field(default=None, max_length=128)
    cases: int = Field(ge=0)
    passed_cases: int = Field(ge=0)
    errors: int = Field(ge=0)
    pass_rate: float = Field(ge=0, le=1)
    mean_score: float | None = None
    cost_usd: float = Field(ge=0)
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    results: list[CaseIn] = Field(default_factory=list, max_length=100_000)


class RunIn(_In):
    run_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]
    name: str | None = Field(default=None, max_length=256)
    passed: bool
    gates: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    variants: list[VariantIn] = Field(min_length=1, max_length=2)


_RUN = (
    "INSERT INTO eval_runs (ts, run_id, variant, name, key_name, team, agent, agent_version, model, cases, "
    "passed_cases, errors, pass_rate, mean_score, cost_nanos, latency_p50_ms, latency_p95_ms, gates, passed) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, variant) DO NOTHING"
)
_CASE = (
    "INSERT INTO eval_scores (ts, kind, request_id, key_name, team, agent, agent_version, run_id, case_id, score, "
    "passed, detail) VALUES (?, 'offline', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def post_run(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    run = validate(RunIn, await read_json(request, runtime.config.server.max_body_bytes))
    ledger = require_ledger(runtime.services.ledger)
    now = time.time()
    gates = orjson.dumps(run.gates).decode()
    stored = 0
    for variant in run.variants:
        changed = await ledger.execute(
            _RUN,
            [now, run.run_id, variant.variant, run.name, ctx.key_name, ctx.team, ctx.agent, variant.agent_version,
             variant.model, variant.cases, variant.passed_cases, variant.errors, variant.pass_rate, variant.mean_score,
             round(variant.cost_usd * 1e9), variant.latency_p50_ms, variant.latency_p95_ms, gates, int(run.passed)],
        )  # fmt: skip
        if not changed:
            raise InvalidRequest(f"The eval run '{run.run_id}' is stored already.", param="run_id")
        for case in variant.results:
            detail = {"variant": variant.variant, "checks": case.checks, "cost_usd": case.cost_usd,
                      "latency_ms": case.latency_ms, "error": case.error}  # fmt: skip
            await ledger.insert(
                _CASE,
                [now, case.request_id, ctx.key_name, ctx.team, ctx.agent, case.agent_version, run.run_id,
                 case.case_id, case.score, int(case.passed), orjson.dumps(detail).decode()],
            )  # fmt: skip
            stored += 1
    body = {"object": "eval.run", "run_id": run.run_id, "variants": len(run.variants), "cases": stored}
    return JSONResponse(body, status_code=201)


_FILTERS = {"team": "team", "agent": "agent", "key": "key_name", "agent_version": "agent_version", "model": "model"}


async def list_runs(request: Request) -> JSONResponse:
    """Eval runs in the window, newest first: filters `team`, `agent`, `key`, `agent_version`, `model`
    (scoped like `/v1/usage`); `limit`."""
    query, extra, ledger = await scoped_query(request, ("limit",))
    limit = bounded_int(extra, "limit", 50, 1, 500)
    where = ["ts >= ?", "ts < ?"]
    values: list[Any] = [query.start, query.end]
    for name, value in query.filters:
        if name not in _FILTERS:
            raise InvalidRequest(f"Eval runs are not filtered by '{name}'.", param=name)
        where.append(f"{_FILTERS[name]} = ?")  # a column from _FILTERS, never the caller's text
        values.append(value)
    rows = await ledger.query(
        "SELECT ts, run_id, variant, name, key_name, team, agent, agent_version, model, cases, passed_cases, errors, "  # noqa: S608
        f"pass_rate, mean_score, cost_nanos, latency_p50_ms, latency_p95_ms, gates, passed FROM eval_runs WHERE "
        f"{' AND '.join(where)} ORDER BY ts DESC, run_id, variant LIMIT ?",
        [*values, limit],
    )
    return JSONResponse({"object": "list", "from": iso(query.start), "to": iso(query.end),
                         "data": [run_row(row) for row in rows]})  # fmt: skip


def run_row(row: Any) -> dict[str, Any]:
    return {
        "time": iso(row["ts"]), "run_id": row["run_id"], "variant": row["variant"], "name": row["name"],
        "key": row["key_name"], "team": row["team"], "agent": row["agent"], "agent_version": row["agent_version"],
        "model": row["model"], "cases": row["cases"], "passed_cases": row["passed_cases"], "errors": row["errors"],
        "pass_rate": row["pass_rate"], "mean_score": row["mean_score"], "cost_usd": row["cost_nanos"] / 1e9,
        "latency_p50_ms": row["latency_p50_ms"], "latency_p95_ms": row["latency_p95_ms"],
        "gates": orjson.loads(row["gates"]), "passed": bool(row["passed"]),
    }  # fmt: skip
