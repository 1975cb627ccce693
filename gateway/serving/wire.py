"""A GatewayError as raw HTTP/1.1 bytes, for the answers the protocol writes itself (before or
instead of the app): the same error body the app renders for that path (Anthropic's under
`/v1/messages`, else OpenAI's), always with `connection: close`."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus

from gateway.apis import error_json
from gateway.context import new_request_id
from gateway.errors import GatewayError


def error_response(error: GatewayError, server_headers: Iterable[tuple[bytes, bytes]] = (), path: str = "") -> bytes:
    """The whole response: status line, `server_headers` (uvicorn's date and configured headers),
    the error's own headers, a fresh `x-request-id` like every other answer, and the JSON body in the
    shape of the API at `path` (the request's, as far as it was read)."""
    body = error_json(error, path)
    lines = [f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}".encode("ascii")]
    lines += [name + b": " + value for name, value in server_headers]
    lines += [
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode("ascii"),
        b"connection: close",
        b"x-request-id: " + new_request_id().encode("ascii"),
    ]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in error.response_headers().items()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
