"""GET /v1/sessions: find sessions by id (`session` exact, or `prefix`), task or agent, most recent
first; `failed=true` keeps those with an error. Window and filters as `/v1/usage`, scoped the same way."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.endpoints.window import bounded_int, choice, scoped_query
from gateway.metering import insights, report


async def find_sessions(request: Request) -> JSONResponse:
    query, extra, ledger = await scoped_query(request, ("prefix", "failed", "limit"))
    failed = choice(extra, "failed", ("true", "false"), "false") == "true"
    limit = bounded_int(extra, "limit", 50, 1, 500)
    rows = await insights.sessions(ledger, query, prefix=extra.get("prefix") or None, failed=failed, limit=limit)
    return JSONResponse({"object": "list", "from": report.iso(query.start), "to": report.iso(query.end), "data": rows})
