"""GET /v1/usage: the chargeback report, scoped by the caller's role."""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.auth import Principal
from gateway.endpoints.intake import identify, runtime_of
from gateway.endpoints.scope import visible
from gateway.errors import PermissionDenied, ServiceUnavailable
from gateway.metering import report


async def usage(request: Request) -> Response:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    query = report.parse_query(request.query_params)
    query = scoped(query, ctx.principal)
    ledger = runtime.services.ledger
    if ledger is None:
        raise ServiceUnavailable("The usage ledger is turned off in this gateway's config (ledger: false).")
    await ledger.settle()  # the report includes every call this replica answered so far
    result = await report.run(ledger, query)
    if query.format == "csv":
        return Response(result.as_csv(), media_type="text/csv; charset=utf-8")
    return JSONResponse(result.as_json())


def scoped(query: report.UsageQuery, principal: Principal) -> report.UsageQuery:
    """The query narrowed to what the principal may see: an agent key its own calls, a team admin
    its team's, an admin everything. Asking for anything beyond that is a 403."""
    filters = dict(query.filters)
    for name, value in visible(principal).items():
        if filters.get(name, value) != value:
            raise PermissionDenied(
                f"This key may not see usage outside its own {'calls' if name == 'key' else name}.",
                param=name,
            )
        filters[name] = value
    ordered = tuple((name, filters[name]) for name in report.DIMENSIONS if name in filters)
    return dataclasses.replace(query, filters=ordered)
