"""The call endpoints (`/v1/chat/completions`, `/v1/embeddings`, `/v1/responses`, `/v1/messages`):
one adapter from HTTP to the call pipeline, parameterised by the API.

The adapter authenticates, reads and validates the body, hands the pipeline a `CallRequest`, and
turns its answer into HTTP: JSON bytes, or a server-sent-event stream. Every error is rendered here,
in the API's own shape. A request refused before it became a call (bad key, bad body, bad headers)
still counts in `agentgw_requests_total`; every later outcome is counted when the call finishes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from gateway.apis import Api
from gateway.endpoints.intake import identify, read_json, runtime_of, trace_headers
from gateway.errors import GatewayError, internal_error
from gateway.pipeline import CallRequest, StreamReply, run_call
from gateway.responses import JSONBytes, SSEStream
from gateway.runtime import Runtime

log = logging.getLogger("agentgw.http")


def call_endpoint(api: Api) -> Callable[[Request], Awaitable[Response]]:
    """The handler of one call API."""

    async def handle(request: Request) -> Response:
        runtime = runtime_of(request)
        try:
            ctx = identify(request, runtime)
            body = await read_json(request, runtime.config.server.max_body_bytes)
            model = api.validate(body)
        except GatewayError as refused:
            metrics = runtime.services.telemetry.metrics
            if metrics is not None:
                metrics.child(metrics.requests, api.name, str(refused.status), refused.code).inc()
            return error_response(api, refused)
        call = CallRequest(api, ctx, body, model, trace_headers(request), _passed_headers(request, runtime, api))
        try:
            reply = await run_call(runtime, call)
        except GatewayError as error:
            return error_response(api, error)
        except Exception:
            log.exception("call %s failed", ctx.request_id)
            return error_response(api, internal_error())
        if isinstance(reply, StreamReply):
            return SSEStream(reply.relay.run, reply.headers)
        return JSONBytes(reply.body, reply.headers)

    handle.__name__ = f"{api.name}_endpoint"
    return handle


def error_response(api: Api, error: GatewayError) -> JSONBytes:
    """An error in the API's own shape, with the error's status and headers (retry-after..., and its
    code in `x-agentgw-error-code`: Anthropic's error shape has no field for it)."""
    import orjson

    return JSONBytes(orjson.dumps(api.error_body(error)), error.response_headers(), status_code=error.status)


def _passed_headers(request: Request, runtime: Runtime, api: Api) -> dict[str, str]:
    """The request headers the call may use: those routing rules look at, and the API's own headers
    a provider speaking it natively receives (`anthropic-version`, `anthropic-beta`)."""
    wanted = runtime.router.rule_headers()
    native = api.native_headers
    if not wanted and not native:
        return {}
    found: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name in wanted or name in native:
            found.setdefault(name, raw_value.decode("latin-1"))
    return found
