"""POST /v1/messages/count_tokens: how many input tokens a Messages request would use.

Free and unmetered, as Anthropic's is. A model served by a provider speaking the Messages API is
asked itself; for any other, the gateway counts the request's text with the model's tokenizer (the
answer is then an estimate, as its header `x-agentgw-estimated: true` says).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.apis import API
from gateway.apis.sizes import request_texts
from gateway.endpoints.calls import error_response
from gateway.endpoints.intake import identify, read_json, runtime_of
from gateway.errors import GatewayError, InvalidRequest, UpstreamFailed, UpstreamProblem
from gateway.providers.anthropic import AnthropicProvider
from gateway.responses import JSONBytes
from gateway.runtime import Runtime
from routing import RequestFeatures

MESSAGES = API["messages"]


async def count_tokens(request: Request) -> Response:
    runtime = runtime_of(request)
    try:
        ctx = identify(request, runtime)
        body = await read_json(request, runtime.config.server.max_body_bytes)
        model = body.get("model")
        if not isinstance(model, str) or not model or not isinstance(body.get("messages"), list):
            raise InvalidRequest("count_tokens needs `model` and a `messages` list.", param="messages")
        runtime.check_requested(ctx.principal, model)
        plan = runtime.plan(
            RequestFeatures(requested_model=model, allowed_models=runtime.router.allowed_models(ctx.principal.models))
        )
        target = plan.targets[0]
        provider = runtime.providers[target.provider]
        headers = {"x-request-id": ctx.request_id}
        if isinstance(provider, AnthropicProvider):
            try:
                counted = await provider.count_tokens({**body, "model": target.upstream_model}, headers)
            except UpstreamProblem as problem:
                raise UpstreamFailed(f"The provider could not count the tokens: {problem.detail}") from None
            return JSONBytes(orjson.dumps(counted), {"x-agentgw-model": target.model})
        return JSONBytes(orjson.dumps({"input_tokens": _estimate(runtime, body, target)}), _estimated(target.model))
    except GatewayError as error:
        return error_response(MESSAGES, error)


def _estimate(runtime: Runtime, body: dict[str, Any], target: Any) -> int:
    counter = runtime.services.counter
    encoding = counter.encoding_for(target.upstream_model, target.spec.tokenizer)
    return counter.count_text("\n".join(request_texts(body)), encoding)


def _estimated(model: str) -> dict[str, str]:
    return {"x-agentgw-model": model, "x-agentgw-estimated": "true"}
