"""GET /v1/models: the models and routes this key may use, in OpenAI's list shape."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.endpoints.intake import identify, runtime_of


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
