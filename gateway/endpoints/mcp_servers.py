"""GET /v1/mcp/servers: the upstream MCP servers and their health, as this key may see them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.auth import Role
from gateway.endpoints.intake import identify, runtime_of


async def mcp_servers(request: Request) -> JSONResponse:
    """Each server with its transport, location (no credentials), timeout, calls in flight and health
    (`state`: idle, up or down; requests, failures, timeouts, the last error's kind, latency). An admin
    key sees every server; any other key those the access rules may let it use."""
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    servers = runtime.mcp.describe()
    if ctx.principal.role is not Role.ADMIN:
        reachable = {u.name for u in runtime.mcp.reachable(ctx.team, ctx.key_name, ctx.agent)}
        servers = [server for server in servers if server["name"] in reachable]
    return JSONResponse({"object": "list", "data": servers})
