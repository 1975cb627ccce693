"""GET /v1/usage/latency: latency and time-to-first-token percentiles (p50, p95, p99) of answered
calls, overall or by `group_by` dimensions; window and filters as `/v1/usage`, scoped the same way."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.endpoints.window import scoped_query
from gateway.errors import InvalidRequest
from gateway.metering import insights, report


async def latency(request: Request) -> JSONResponse:
    query, extra, ledger = await scoped_query(request, ("group_by",))
    by = tuple(part.strip() for part in extra.get("group_by", "").split(",") if part.strip())
    for name in by:
        if name not in report.DIMENSIONS or by.count(name) > 1:
            raise InvalidRequest(
                f"Cannot group latency by '{name}'; use {', '.join(report.DIMENSIONS)}.", param="group_by"
            )
    rows = await insights.latency(ledger, query, by)
    body = {"object": "usage.latency", "from": report.iso(query.start), "to": report.iso(query.end),
            "group_by": list(by), "data": rows}  # fmt: skip
    return JSONResponse(body)
