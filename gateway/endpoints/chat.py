"""POST /v1/chat/completions and POST /v1/embeddings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.calls import Call
from gateway.endpoints.intake import identify, read_json, runtime_of
from gateway.schemas import ChatRequest, EmbeddingsRequest, validate


async def chat_completions(request: Request) -> Response:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    body = await read_json(request, runtime.config.server.max_body_bytes)
    chat = validate(ChatRequest, body)
    plan = runtime.plan_for(ctx.principal, chat.model, "chat")
    call = Call(runtime, ctx, plan, body, "chat")
    return await (call.stream() if chat.stream else call.complete())


async def embeddings(request: Request) -> Response:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    body = await read_json(request, runtime.config.server.max_body_bytes)
    embed = validate(EmbeddingsRequest, body)
    plan = runtime.plan_for(ctx.principal, embed.model, "embeddings")
    return await Call(runtime, ctx, plan, body, "embeddings").complete()
