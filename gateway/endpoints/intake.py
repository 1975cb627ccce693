"""The first steps of every API call: find the runtime, authenticate, attribute, read the body."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway.context import CallContext, attribute
from gateway.errors import RequestTooLarge
from gateway.runtime import Runtime
from gateway.schemas import parse_body


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def identify(request: Request, runtime: Runtime) -> CallContext:
    """Authenticate the key, then attribute the call (401, 403 or 400 on the way)."""
    principal = runtime.keys.authenticate(request.headers.get("authorization"))
    return attribute(principal, request.headers, request.state.request_id)


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, refusing more than `limit` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return parse_body(b"".join(chunks))


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than this gateway accepts ({limit} bytes).")
