"""The stand-in provider as a starlette app: both wire formats plus the request log over HTTP."""

from __future__ import annotations

import itertools

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .anthropic_api import AnthropicWire
from .log import RecordRequests, RequestLog
from .openai_api import OpenAIWire
from .openai_responses import ResponsesWire


def create_app(log: RequestLog) -> Starlette:
    """Every request except `/_log*` is recorded in `log` before it is answered."""
    ids = itertools.count(1)

    async def show_log(request: Request) -> Response:
        return Response(log.to_json(), media_type="application/json")

    async def clear_log(request: Request) -> Response:
        log.clear()
        return Response(status_code=204)

    routes = [
        *OpenAIWire(log, ids).routes(),
        *ResponsesWire(log, ids).routes(),
        *AnthropicWire(log, ids).routes(),
        Route("/_log", show_log, methods=["GET"]),
        Route("/_log/clear", clear_log, methods=["POST"]),
    ]
    return Starlette(routes=routes, middleware=[Middleware(RecordRequests, log=log)])
