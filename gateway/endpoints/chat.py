"""POST /v1/chat/completions and POST /v1/embeddings."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from gateway.context import CallContext
from gateway.endpoints.intake import identify, read_json, runtime_of
from gateway.forward import Answer
from gateway.providers import Completion
from gateway.schemas import ChatRequest, EmbeddingsRequest, validate
from gateway.streaming import SSEResponse, StreamResult
from routing import Plan

log = logging.getLogger("agentgw.calls")


async def chat_completions(request: Request) -> Response:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    body = await read_json(request, runtime.config.server.max_body_bytes)
    chat = validate(ChatRequest, body)
    plan = runtime.plan_for(ctx.principal, chat.model, "chat")
    headers = upstream_headers(ctx)
    if chat.stream:
        (stream, first), answer = await runtime.forwarder.open_stream(plan, body, headers)

        async def on_end(result: StreamResult) -> None:
            log.debug("stream %s ended: %s after %d chunks", ctx.request_id, result.outcome, result.chunks)

        return SSEResponse(stream, first, answer_headers(plan, answer), on_end)
    completion, answer = await runtime.forwarder.complete(plan, body, "chat", headers)
    return json_answer(completion, plan, answer)


async def embeddings(request: Request) -> Response:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    body = await read_json(request, runtime.config.server.max_body_bytes)
    embed = validate(EmbeddingsRequest, body)
    plan = runtime.plan_for(ctx.principal, embed.model, "embeddings")
    completion, answer = await runtime.forwarder.complete(plan, body, "embeddings", upstream_headers(ctx))
    return json_answer(completion, plan, answer)


def upstream_headers(ctx: CallContext) -> dict[str, str]:
    """What the provider learns about the call: its request id, nothing of the client's key."""
    return {"x-request-id": ctx.request_id}


def answer_headers(plan: Plan, answer: Answer) -> dict[str, str]:
    headers = {"x-agentgw-model": answer.target.model, "x-agentgw-provider": answer.provider.name}
    if plan.route is not None:
        headers["x-agentgw-route"] = plan.route
    return headers


def json_answer(completion: Completion, plan: Plan, answer: Answer) -> Response:
    import orjson

    body = completion.raw if completion.raw is not None else orjson.dumps(completion.data)
    return Response(body, media_type="application/json", headers=answer_headers(plan, answer))
