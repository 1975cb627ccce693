"""The gateway's answers as Starlette Responses that do no more work than their ASGI messages:
JSON already encoded (Starlette's own re-encodes and re-checks every header), and event streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

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
        await self.send_to(send)

    async def send_to(self, send: Send) -> None:
        """The response's two ASGI messages: how code outside a route (a middleware) answers."""
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})


SendBytes = Callable[[bytes], Awaitable[None]]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class SSEStream(Response):
    """A server-sent-event stream: `relay(send)` produces its bytes. A client that disconnects cancels
    the relay (which then finishes its call as abandoned)."""

    def __init__(self, relay: Callable[[SendBytes], Awaitable[None]], headers: dict[str, str]) -> None:
        self._relay = relay
        self.status_code = 200
        self.background = None
        self.raw_headers = [*_SSE_HEADERS, *((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})

        async def send_bytes(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        relay = asyncio.ensure_future(self._relay(send_bytes))
        watch = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait({relay, watch}, return_when=asyncio.FIRST_COMPLETED)
            if not relay.done():
                relay.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await relay
        finally:
            watch.cancel()
            relay.cancel()
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
