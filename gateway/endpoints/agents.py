"""GET /v1/agents: each agent the key may see, with its calls, errors and error rate, cost, tasks and
cost per task, sessions, latency percentiles, and the APIs and models it used; most expensive first.
Window and filters as `/v1/usage`, scoped the same way. Rows are keyed by team and agent (workflow
versions, when the ledger has them, will key rows within an agent)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.endpoints.window import scoped_query
from gateway.metering import insights, report


async def agents(request: Request) -> JSONResponse:
    query, _, ledger = await scoped_query(request)
    rows = await insights.agents(ledger, query)
    return JSONResponse({"object": "list", "from": report.iso(query.start), "to": report.iso(query.end), "data": rows})
