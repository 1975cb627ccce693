"""POST /v1/chat/completions and POST /v1/embeddings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.calls import Call
from gateway.endpoints.intake import identify, read_json, runtime_of, trace_headers
from gateway.errors import GatewayError
from gateway.providers.base import Operation
from gateway.runtime import Runtime
from gateway.schemas import ChatRequest, EmbeddingsRequest, validate


async def chat_completions(request: Request) -> Response:
    runtime = runtime_of(request)
    try:
        ctx = identify(request, runtime)
        body = await read_json(request, runtime.config.server.max_body_bytes)
        chat = validate(ChatRequest, body)
    except GatewayError as refused:
        _count_refused(runtime, "chat", refused)
        raise
    return await Call(runtime, ctx, body, "chat", chat.model, trace_headers(request), request.headers).run()


async def embeddings(request: Request) -> Response:
    runtime = runtime_of(request)
    try:
        ctx = identify(request, runtime)
        body = await read_json(request, runtime.config.server.max_body_bytes)
        embed = validate(EmbeddingsRequest, body)
    except GatewayError as refused:
        _count_refused(runtime, "embeddings", refused)
        raise
    return await Call(runtime, ctx, body, "embeddings", embed.model, trace_headers(request), request.headers).run()


def _count_refused(runtime: Runtime, operation: Operation, error: GatewayError) -> None:
    """A call refused before it became a Call (bad key, bad body, bad headers) still counts in
    `agentgw_requests_total`; every later outcome is counted when its Call finishes."""
    metrics = runtime.services.telemetry.metrics
    if metrics is not None:
        metrics.child(metrics.requests, operation, str(error.status), error.code).inc()
