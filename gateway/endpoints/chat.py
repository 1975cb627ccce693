"""POST /v1/chat/completions and POST /v1/embeddings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.calls import Call
from gateway.endpoints.intake import identify, read_json, runtime_of, trace_headers
from gateway.schemas import ChatRequest, EmbeddingsRequest, validate


async def chat_completions(request: Request) -> Response:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    body = await read_json(request, runtime.config.server.max_body_bytes)
    chat = validate(ChatRequest, body)
    return await Call(runtime, ctx, body, "chat", chat.model, trace_headers(request), request.headers).run()


async def embeddings(request: Request) -> Response:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    body = await read_json(request, runtime.config.server.max_body_bytes)
    embed = validate(EmbeddingsRequest, body)
    return await Call(runtime, ctx, body, "embeddings", embed.model, trace_headers(request), request.headers).run()
