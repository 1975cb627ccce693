"""GET /v1/sessions/{session_id}: an agent session's calls in order, for replay and debugging."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.endpoints.intake import identify, runtime_of
from gateway.endpoints.scope import sql_filter
from gateway.errors import NotFound, ServiceUnavailable
from gateway.metering.ledger import Ledger
from gateway.metering.pricing import usd
from gateway.metering.report import iso

_SELECT = (
    "SELECT e.request_id, e.trace_id, e.ts, e.latency_ms, e.ttft_ms, e.key_name, e.team, e.agent, e.task, e.operation, "
    "e.requested_model, e.route, e.model, e.provider, e.stream, e.status, e.outcome, e.error_type, e.input_tokens, "
    "e.output_tokens, e.cached_tokens, e.reasoning_tokens, e.estimated, e.cost_nanos, e.attempts, e.attempt_log, "
    "e.guardrails, e.agent_version, e.server, e.tool, e.bytes_in, e.bytes_out, c.input_messages, c.output_messages "
    "FROM usage_events e LEFT JOIN call_content c ON c.request_id = e.request_id "
    "WHERE e.session = ? AND {scope} ORDER BY e.ts, e.id"
)


async def session(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    session_id = request.path_params["session_id"]
    ledger = require_ledger(runtime.services.ledger)
    await ledger.settle()
    scope, params = sql_filter(ctx.principal, "e")
    rows = await ledger.query(_SELECT.format(scope=scope), [session_id, *params])  # scope: constants; values bound
    if not rows:
        raise NotFound(f"No calls of session '{session_id}' that this key may see.", param="session_id")
    calls = [call_record(row) for row in rows]
    totals = {
        "calls": len(calls),
        "input_tokens": sum(c["usage"]["input_tokens"] for c in calls),
        "output_tokens": sum(c["usage"]["output_tokens"] for c in calls),
        "cost_usd": usd(sum(row["cost_nanos"] for row in rows)),
    }
    return JSONResponse({"object": "session", "id": session_id, "calls": calls, "totals": totals})


def require_ledger(ledger: Ledger | None) -> Ledger:
    if ledger is None:
        raise ServiceUnavailable("The usage ledger is turned off in this gateway's config (ledger: false).")
    return ledger


def call_record(row: Any) -> dict[str, Any]:
    """One recorded call as the API shows it."""
    record: dict[str, Any] = {
        "request_id": row["request_id"],
        "trace_id": row["trace_id"],
        "time": iso(row["ts"]),
        "latency_ms": row["latency_ms"],
        "ttft_ms": row["ttft_ms"],
        "key": row["key_name"],
        "team": row["team"],
        "agent": row["agent"],
        "agent_version": row["agent_version"],
        "task": row["task"],
        "operation": row["operation"],
        "requested_model": row["requested_model"],
        "route": row["route"],
        "model": row["model"],
        "provider": row["provider"],
        "stream": bool(row["stream"]),
        "status": row["status"],
        "outcome": row["outcome"],
        "error_type": row["error_type"],
        "usage": {
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
            "cached_tokens": row["cached_tokens"],
            "reasoning_tokens": row["reasoning_tokens"],
            "estimated": bool(row["estimated"]),
        },
        "cost_usd": usd(row["cost_nanos"]),
        "attempts": row["attempts"],
        "failed_attempts": orjson.loads(row["attempt_log"]),
        "guardrails": orjson.loads(row["guardrails"]),
    }
    if row["server"] is not None:  # a tool call (MCP)
        record["tool"] = {
            "server": row["server"],
            "name": row["tool"],
            "bytes_in": row["bytes_in"],
            "bytes_out": row["bytes_out"],
        }
    if row["input_messages"] is not None:
        record["input_messages"] = orjson.loads(row["input_messages"])
    if row["output_messages"] is not None:
        record["output_messages"] = orjson.loads(row["output_messages"])
    return record
