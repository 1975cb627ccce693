"""Response helpers shared by both wire formats: JSON, the SSE stream that notices a client
leaving, the scripted stream cut, and a sleep that ends early when the client goes away."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from .log import ENTRY_SCOPE_KEY, Logged, RequestLog
from .scenario import CONTEXT_TOO_LONG, Scenario


class StreamCut(Exception):
    """Raised by a frame generator to drop the connection without finishing the body."""


def entry_of(request: Request) -> Logged:
    entry: Logged = request.scope[ENTRY_SCOPE_KEY]
    return entry


def json_response(content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(content), status_code, headers, media_type="application/json")


def html_oops() -> Response:
    return Response("<html>oops</html>", 200, media_type="text/html")


class Silent(Response):
    """Sends nothing: for a client that has already gone away."""

    def __init__(self) -> None:
        super().__init__(status_code=499)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def sleep_unless_gone(request: Request, log: RequestLog, seconds: float) -> bool:
    """Sleep `seconds`; return True (and mark the request cancelled) if the client left first."""
    gone = False
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            nonlocal gone
            await _wait_for_disconnect(request.receive)
            gone = True
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        await anyio.sleep(seconds)
        tg.cancel_scope.cancel()
    if gone:
        log.update(entry_of(request), cancelled=True)
    return gone


class EventStream(StreamingResponse):
    """An SSE response fed by an async generator of ready-made frames.

    While frames are sent, a watcher listens for `http.disconnect`; if the client leaves before the
    end, the generator is cancelled and the logged request is marked `cancelled`. A generator that
    raises `StreamCut` makes the stand-in return without finishing the body, so the server closes
    the connection and the client sees an incomplete response.
    """

    def __init__(
        self,
        frames: AsyncGenerator[bytes, None],
        log: RequestLog,
        entry: Logged,
        headers: Mapping[str, str] | None = None,
        end_delay: float = 0.0,
    ) -> None:
        super().__init__(frames, 200, {"cache-control": "no-cache", **(headers or {})}, "text/event-stream")
        self.frames = frames
        self.end_delay = end_delay  # seconds between the last frame and the end of the body
        self.log = log
        self.entry = entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        done = False
        gone = False
        try:
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    nonlocal gone
                    await _wait_for_disconnect(receive)
                    if not done:
                        gone = True
                        tg.cancel_scope.cancel()

                tg.start_soon(watch)
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                try:
                    async for frame in self.frames:
                        await send({"type": "http.response.body", "body": frame, "more_body": True})
                except StreamCut:
                    done = True
                else:
                    done = True
                    if self.end_delay:
                        await anyio.sleep(self.end_delay)
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.frames.aclose()
        if gone:
            self.log.update(self.entry, cancelled=True)


def sse_data(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def sse_event(name: str, payload: Any) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


async def scripted_outcome(
    request: Request, log: RequestLog, scenario: Scenario, error: Callable[..., Response]
) -> Response | None:
    """The response a scripted model gives before any content (failure, HTML, client gone after a
    slow start), or None to go on and answer normally."""
    if scenario.too_long:
        return error(400, CONTEXT_TOO_LONG)
    if scenario.leak_key:
        key = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        half = len(key) // 2
        return error(400, f"Incorrect API key provided: {key[:half]}\u200b{key[half:]}.")
    if scenario.fail_status is not None:
        attempts = log.count(lambda entry: entry.model == scenario.model)
        if scenario.fail_first is None or attempts <= scenario.fail_first:
            return error(scenario.fail_status)
    if scenario.not_json:
        return html_oops()
    if scenario.slow_seconds and await sleep_unless_gone(request, log, scenario.slow_seconds):
        return Silent()
    return None
