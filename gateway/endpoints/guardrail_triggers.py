"""GET /v1/guardrails/triggers: how often each guardrail fired, per day or hour (`bucket`), per
agent, and in all. Window and filters as `/v1/usage`, scoped the same way."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.endpoints.window import choice, scoped_query
from gateway.metering import insights, report


async def guardrail_triggers(request: Request) -> JSONResponse:
    query, extra, ledger = await scoped_query(request, ("bucket",))
    bucket = choice(extra, "bucket", ("day", "hour"), "day")
    found = await insights.guardrail_triggers(ledger, query, bucket)
    body = {"object": "guardrails.triggers", "from": report.iso(query.start), "to": report.iso(query.end),
            "bucket": bucket, **found}  # fmt: skip
    return JSONResponse(body)
