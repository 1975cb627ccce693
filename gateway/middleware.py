"""The gateway's edge, as pure ASGI middleware: a request id on every response, and the one place
an error raised outside the call endpoints (which render theirs in their API's shape) becomes an
HTTP response in OpenAI's shape (Anthropic's under `/v1/messages`): the router's 404 and 405, the other
endpoints' GatewayErrors, and anything unexpected (a 500 that names no detail)."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.apis import error_json
from gateway.context import client_request_id, new_request_id
from gateway.errors import GatewayError, InvalidRequest, MethodNotAllowed, UnknownEndpoint, internal_error
from gateway.responses import JSONBytes

log = logging.getLogger("agentgw.http")


class EdgeMiddleware:
    """Gives each request the gateway's own id (`x-request-id` on the response; a caller's own
    `x-request-id`, when sane, is kept beside it and echoed as `x-client-request-id`);
    renders a GatewayError, Starlette's 404/405, or any unexpected exception as an OpenAI error."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = new_request_id()  # always the gateway's own: callers' ids need not be unique
        client_id = client_request_id(incoming)
        state = scope.setdefault("state", {})
        state["request_id"], state["client_request_id"] = request_id, client_id
        headers = [(b"x-request-id", request_id.encode("latin-1"))]
        if client_id is not None:
            headers.append((b"x-client-request-id", client_id.encode("latin-1")))
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if started:
                raise
            error = _as_gateway_error(exc, scope)
            if error is None:
                log.exception("unhandled error in request %s", request_id)
                error = internal_error()
            await send_error(error, send_with_id, scope.get("path", ""))


def _as_gateway_error(exc: Exception, scope: Scope) -> GatewayError | None:
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, HTTPException):
        where = f"{scope.get('method')} {scope.get('path')}"
        if exc.status_code == 404:
            return UnknownEndpoint(f"No such endpoint: {where}")
        if exc.status_code == 405:
            allow = (exc.headers or {}).get("Allow", "")
            return MethodNotAllowed(f"Method not allowed: {where}", allow=allow)
        return InvalidRequest(f"{exc.detail}: {where}")
    return None


async def send_error(error: GatewayError, send: Send, path: str = "") -> None:
    """The error in the shape the caller's SDK reads (`error_json`)."""
    await JSONBytes(error_json(error, path), error.response_headers(), error.status).send_to(send)
