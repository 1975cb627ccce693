"""POST /v1/chat/completions and POST /v1/embeddings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.calls import Call
from gateway.endpoints.intake import identify, read_json, runtime_of, trace_headers
from gateway.errors import GatewayError
from gateway.providers.base import Operation
from gateway.schemas import ChatRequest, EmbeddingsRequest, validate


async def chat_completions(request: Request) -> Response:
    return await _call(request, "chat", ChatRequest)


async def embeddings(request: Request) -> Response:
    return await _call(request, "embeddings", EmbeddingsRequest)


async def _call(
    request: Request, operation: Operation, schema: type[ChatRequest] | type[EmbeddingsRequest]
) -> Response:
    """Authenticate, read and validate the body, then run the call. A request refused before it
    became a Call (bad key, bad body, bad headers) still counts in `agentgw_requests_total`; every
    later outcome is counted when its Call finishes."""
    runtime = runtime_of(request)
    try:
        ctx = identify(request, runtime)
        body = await read_json(request, runtime.config.server.max_body_bytes)
        model = validate(schema, body).model
    except GatewayError as refused:
        metrics = runtime.services.telemetry.metrics
        if metrics is not None:
            metrics.child(metrics.requests, operation, str(refused.status), refused.code).inc()
        raise
    return await Call(runtime, ctx, body, operation, model, trace_headers(request), request.headers).run()
