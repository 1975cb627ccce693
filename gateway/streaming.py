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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway import sse
from gateway.errors import (
    Attempt,
    GatewayError,
    UpstreamFailed,
    UpstreamProblem,
    UpstreamTimedOut,
    internal_error,
)
from gateway.guards import blocked as guardrail_blocked
from gateway.metering.usage import Usage
from gateway.providers import Chunk, ChunkStream
from policies.guardrails import StreamGuard

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
    output: list[str] = field(default_factory=list)  # the text sent, for capture and estimates
    ended: float = 0.0

    @property
    def output_text(self) -> str:
        return "".join(self.output)


class SSEResponse(Response):
    """A response for one relayed stream (a Response only so endpoints can return it; it does
    its own sending)."""

    def __init__(
        self,
        stream: ChunkStream,
        first: Chunk,
        headers: dict[str, str],
        on_end: Callable[[StreamResult], Awaitable[None]],
        guard: StreamGuard | None = None,
        attempts: Callable[[UpstreamProblem], Sequence[Attempt]] = lambda problem: (),
    ) -> None:
        self._stream = stream
        self._first = first
        self._attempts = attempts  # the call's attempts, this stream's failed one last, for the error event
        self._start_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        self._start_headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self._on_end = on_end
        self._guard = guard  # output guardrails: they may hold, rewrite or block what is sent
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
            blocked = await self._send_chunk(self._first, send)
            if blocked is None:
                async for chunk in self._stream:
                    if (blocked := await self._send_chunk(chunk, send)) is not None:
                        break
            if blocked is None and self._guard is not None:  # the upstream ended: release what is held
                step = await self._guard.finish()
                blocked = step.blocked_by
                if blocked is None:
                    await self._emit(step.chunks, send)
            payload = sse.DONE if blocked is None else self._fail(guardrail_blocked(blocked, "output"))
        except UpstreamProblem as problem:
            error_cls = UpstreamTimedOut if problem.kind == "timeout" else UpstreamFailed
            message = f"The upstream stream failed after it started: {problem.detail}"
            payload = self._fail(error_cls(message, attempts=self._attempts(problem)))
        except GatewayError as error:
            payload = self._fail(error)
        except (asyncio.CancelledError, OSError):
            raise
        except Exception:
            log.exception("stream relay failed")
            payload = self._fail(internal_error())
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    async def _send_chunk(self, chunk: Chunk, send: Send) -> str | None:
        """Note what the chunk says and send it (through the guard, if any); the name of the guardrail
        that blocked the stream, or None."""
        result = self.result
        if chunk.usage is not None:
            result.usage = chunk.usage
        data = chunk.data
        if result.response_id is None:
            result.response_id = data.get("id")
            result.response_model = data.get("model")
        for choice in data.get("choices") or ():
            if isinstance(choice, dict) and choice.get("finish_reason"):
                result.finish_reasons.append(choice["finish_reason"])
        if not chunk.visible:
            return None
        if self._guard is None:
            _collect_output(data, result.output)
            payload = sse.encode_data(chunk.raw) if chunk.raw is not None else sse.encode_json(data)
            result.chunks += 1
            await send({"type": "http.response.body", "body": payload, "more_body": True})
            return None
        step = self._guard.feed(data)
        if step.blocked_by is None:
            await self._emit(step.chunks, send)
        return step.blocked_by

    async def _emit(self, chunks: list[dict[str, Any]], send: Send) -> None:
        """Send chunks the guard released (it may have rewritten or merged them)."""
        for data in chunks:
            _collect_output(data, self.result.output)
            self.result.chunks += 1
            await send({"type": "http.response.body", "body": sse.encode_json(data), "more_body": True})

    def _fail(self, error: GatewayError) -> bytes:
        self.result.outcome = "error"
        self.result.error = error
        return sse.encode_json(error.body())


def _collect_output(chunk: dict[str, Any], output: list[str]) -> None:
    """The text a chunk sends (content and tool-call names and arguments), for capture and estimates."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        content = delta.get("content")
        if isinstance(content, str):
            output.append(content)
        for call in delta.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                output.append(f"{function.get('name') or ''}{function.get('arguments') or ''}")


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
