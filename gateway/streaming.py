"""Relaying a provider stream to the client as OpenAI server-sent events.

Chunks leave as they arrive. A failure after the stream has started ends it with one
`data: {"error": ...}` event. A client that goes away cancels the relay, which closes the
upstream response and so cancels the provider's request. However the stream ends, `on_end`
is told once, with what was relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway import sse
from gateway.errors import GatewayError, UpstreamFailed, UpstreamProblem, UpstreamTimedOut, internal_error
from gateway.metering.usage import Usage
from gateway.providers import Chunk, ChunkStream

log = logging.getLogger("agentgw.stream")


@dataclass(slots=True)
class StreamResult:
    """How a relayed stream ended: `outcome` is "ok", "error" or "client_disconnected"."""

    outcome: str = "ok"
    error: GatewayError | None = None
    usage: Usage | None = None
    chunks: int = 0
    finish_reasons: list[str] = field(default_factory=list)
    response_id: str | None = None
    response_model: str | None = None
    output: list[str] = field(default_factory=list)  # generated text, for estimates without usage
    ended: float = 0.0

    @property
    def output_text(self) -> str:
        return "".join(self.output)


ChunkFilter = Callable[[Chunk], Chunk | None]


class SSEResponse(Response):
    """A response for one relayed stream (a Response only so endpoints can return it; it does
    its own sending)."""

    def __init__(
        self,
        stream: ChunkStream,
        first: Chunk,
        headers: dict[str, str],
        on_end: Callable[[StreamResult], Awaitable[None]],
        chunk_filter: ChunkFilter | None = None,
    ) -> None:
        self._stream = stream
        self._first = first
        self._start_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        self._start_headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self._on_end = on_end
        self._filter = chunk_filter
        self.result = StreamResult()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay = asyncio.ensure_future(self._relay(send))
        watch = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait({relay, watch}, return_when=asyncio.FIRST_COMPLETED)
            if not relay.done():
                self.result.outcome = "client_disconnected"
                relay.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await relay
        finally:
            watch.cancel()
            relay.cancel()
            with contextlib.suppress(BaseException):
                await self._stream.aclose()
            self.result.ended = time.perf_counter()
            await self._on_end(self.result)

    async def _relay(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self._start_headers})
        try:
            await self._send_chunk(self._first, send)
            async for chunk in self._stream:
                await self._send_chunk(chunk, send)
            payload = sse.DONE
        except UpstreamProblem as problem:
            error_cls = UpstreamTimedOut if problem.kind == "timeout" else UpstreamFailed
            payload = self._fail(error_cls(f"The upstream stream failed after it started: {problem.detail}"))
        except GatewayError as error:
            payload = self._fail(error)
        except (asyncio.CancelledError, OSError):
            raise
        except Exception:
            log.exception("stream relay failed")
            payload = self._fail(internal_error())
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    async def _send_chunk(self, chunk: Chunk, send: Send) -> None:
        result = self.result
        if chunk.usage is not None:
            result.usage = chunk.usage
        data = chunk.data
        if result.response_id is None:
            result.response_id = data.get("id")
            result.response_model = data.get("model")
        for choice in data.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            if choice.get("finish_reason"):
                result.finish_reasons.append(choice["finish_reason"])
            delta = choice.get("delta")
            if isinstance(delta, dict):
                _collect_output(delta, result.output)
        if not chunk.visible:
            return
        if self._filter is not None:
            filtered = self._filter(chunk)
            if filtered is None:
                return
            chunk = filtered
        payload = sse.encode_data(chunk.raw) if chunk.raw is not None else sse.encode_json(chunk.data)
        result.chunks += 1
        await send({"type": "http.response.body", "body": payload, "more_body": True})

    def _fail(self, error: GatewayError) -> bytes:
        self.result.outcome = "error"
        self.result.error = error
        return sse.encode_json(error.body())


def _collect_output(delta: dict[str, object], output: list[str]) -> None:
    content = delta.get("content")
    if isinstance(content, str):
        output.append(content)
    for call in delta.get("tool_calls") or ():  # type: ignore[attr-defined]
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            output.append(f"{function.get('name') or ''}{function.get('arguments') or ''}")


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
