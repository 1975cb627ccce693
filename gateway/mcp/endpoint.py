"""`/mcp`: the gateway's MCP endpoint, streamable HTTP on the official SDK's session manager.

It serves both eras of the protocol the SDK speaks: the 2026-07-28 revision (each POST a whole
request, no session) and the initialize handshake of 2025-11-25 and before (a session per client,
`Mcp-Session-Id`). Before the SDK sees a request, this checks what the gateway's HTTP APIs check:
the gateway key (Bearer or x-api-key; it stays here, no upstream server ever receives it), the
attribution headers (X-Agent-Id, X-Task-Id, X-Session-Id, X-Tags), and, for browsers, the Origin.
Each request carries its caller to the handlers (`Caller`), so every request is judged on its own
key and the config in force when it arrived. A legacy session is bound to the key that opened it.

GET (a standing stream for server-initiated messages) is answered 405, which the specification
allows: the gateway sends nothing unasked, and no idle stream holds a shutdown back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from gateway.context import CallContext
from gateway.endpoints.intake import identify, trace_headers
from gateway.errors import GatewayError, PermissionDenied
from gateway.guards import blocked
from gateway.mcp.errors import send_http_error
from gateway.mcp.server import build_server

if TYPE_CHECKING:
    from gateway.runtime import Runtime

SESSION_IDLE_SECONDS = 30 * 60  # a legacy session nobody used for this long is closed (the SDK's default)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent one MCP request, under which config."""

    runtime: Runtime
    ctx: CallContext
    trace: Mapping[str, str]

    def allows(self, name: str) -> bool:
        ctx = self.ctx
        return self.runtime.mcp.allows(ctx.team, ctx.key_name, ctx.agent, name)

    async def guard_result(self, data: dict[str, Any]) -> dict[str, Any]:
        """What a server gave back (a resource, a prompt) through the output guardrails."""
        guard = self.runtime.guards.for_principal(self.ctx.principal)
        if guard is None or not guard.has_tool_result_guards:
            return data
        result = await guard.scan_tool_result(data)
        metrics = self.runtime.services.telemetry.metrics
        if metrics is not None:
            for v in result.verdicts:
                if v.count:
                    metrics.child(metrics.guardrails, v.guardrail, v.phase, v.action).inc()
        if result.blocked_by is not None:
            raise blocked(result.blocked_by, "output")
        return cast(dict[str, Any], result.body)


class McpEndpoint:
    """The ASGI app at /mcp (a plain class: the SDK's manager answers the request once the caller is
    known). `running()` holds the SDK's session manager for the life of the process: sessions outlive
    config reloads."""

    def __init__(self, max_body_bytes: int) -> None:
        self.manager = StreamableHTTPSessionManager(
            app=build_server(),
            max_request_body_size=max_body_bytes,
            session_idle_timeout=SESSION_IDLE_SECONDS,
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime: Runtime = scope["app"].state.runtime
        request = Request(scope, receive)
        try:
            _check_origin(request, runtime.config.mcp.allowed_origins)
            ctx = identify(request, runtime)
        except GatewayError as error:
            await send_http_error(error, send)
            return
        scope["state"]["mcp_caller"] = Caller(runtime, ctx, trace_headers(request))
        # The SDK binds a session to the credential that opened it: the key's name (never the key).
        token = AccessToken(token=f"agentgw-key:{ctx.key_name}", client_id=ctx.key_name, scopes=[])
        scope["user"] = AuthenticatedUser(token)
        await self.manager.handle_request(scope, receive, send)


def _check_origin(request: Request, allowed: list[str]) -> None:
    """A browser's request from another site (DNS rebinding, a page calling a local gateway) is
    refused unless its Origin is listed in `mcp.allowed_origins`; clients that are not browsers send
    no Origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin not in allowed:
        raise PermissionDenied(f"Requests from the origin '{origin[:200]}' may not use /mcp.", param="origin")
