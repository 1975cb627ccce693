"""The gateway's JSON answer: a Starlette Response that sends already-encoded bytes with no more
work than the two ASGI messages (Starlette's own re-encodes and re-checks every header)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

_JSON = (b"content-type", b"application/json")


class JSONBytes(Response):
    def __init__(self, body: bytes, headers: dict[str, str], status_code: int = 200) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = [_JSON, (b"content-length", str(len(body)).encode())]
        self.raw_headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})
