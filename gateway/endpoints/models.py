"""GET /v1/models (the models and routes this key may use, in OpenAI's list shape) and
GET /v1/routes (admin: every route and model with its targets' health and breaker state)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.auth import Role
from gateway.endpoints.intake import identify, runtime_of
from gateway.errors import PermissionDenied


async def list_models(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    data = []
    for name, kind in runtime.catalog.names():
        if not ctx.principal.may_use(name):
            continue
        plan = runtime.catalog.plan(name)
        assert plan is not None
        owner = "agentgw-route" if kind == "route" else plan.targets[0].provider
        data.append({"id": name, "object": "model", "created": 0, "owned_by": owner})
    return JSONResponse({"object": "list", "data": data})


async def list_routes(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    if ctx.principal.role is not Role.ADMIN:
        raise PermissionDenied("Only admin keys may see the routing table.")
    return JSONResponse({"object": "list", "data": runtime.router.describe()})
