"""The first steps of every API call: find the runtime, authenticate, attribute, read the body."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway.context import CallContext, attribute
from gateway.errors import RequestTooLarge
from gateway.runtime import Runtime
from gateway.schemas import parse_body

# The request headers the gateway reads; one pass over the raw headers picks them out.
_WANTED = frozenset(
    {
        b"authorization",
        b"x-api-key",
        b"content-length",
        b"x-agent-id",
        b"x-task-id",
        b"x-session-id",
        b"x-tags",
        b"x-agent-version",
    }
)
_TRACE = (b"traceparent", b"tracestate")
SIGNED_IN = "signed_in"  # request state: the Principal of a console session (gateway.console.signin)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.scope["app"].state.runtime
    return runtime


def wanted_headers(request: Request) -> dict[str, str]:
    """The headers the gateway reads, by lower-case name (the first of a repeated one wins)."""
    found: dict[str, str] = {}
    for name, value in request.scope["headers"]:
        if name in _WANTED:
            found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


def trace_headers(request: Request) -> dict[str, str]:
    """The caller's W3C trace context, if it sent one."""
    return {name.decode(): value.decode("latin-1") for name, value in request.scope["headers"] if name in _TRACE}


def identify(request: Request, runtime: Runtime) -> CallContext:
    """Authenticate the key, then attribute the call (401, 403 or 400 on the way). A console route
    has already signed its caller in from the session cookie and left the principal in the state."""
    headers = wanted_headers(request)
    state = request.scope["state"]
    state["content_length"] = headers.get("content-length")  # for read_json, read with the others
    principal = state.get(SIGNED_IN) or runtime.keys.authenticate(
        headers.get("authorization"), api_key=headers.get("x-api-key")
    )
    return attribute(principal, headers, state["request_id"], state.get("client_request_id"))


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, refusing more than `limit` bytes before reading them all."""
    state = request.scope["state"]
    declared = state["content_length"] if "content_length" in state else request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await request.receive()
        if message["type"] != "http.request":
            break  # the client went away; what arrived is parsed (and will most likely fail)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        more = message.get("more_body", False)
    return parse_body(chunks[0] if len(chunks) == 1 else b"".join(chunks))


def _too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than this gateway accepts ({limit} bytes).")
