"""Relaying one provider stream to the client, with no HTTP: events in, server-sent-event bytes out
through a `send` function the endpoint adapter gives.

Each provider event becomes the client's events (as it is, or translated), each passes through the
output guardrails when there are any, and each leaves as soon as it may. A failure after the stream
started ends it with the error events of the client's API. A client that goes away cancels the
relay, which closes the upstream response and so cancels the provider's request. However the stream
ends, the call is finished once, with what was relayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from gateway.apis.base import Event, StreamState, renamed
from gateway.errors import (
    Attempt,
    GatewayError,
    ServiceUnavailable,
    UpstreamFailed,
    UpstreamProblem,
    UpstreamTimedOut,
    internal_error,
)
from gateway.guards import blocked as guardrail_blocked
from gateway.metering.usage import Usage
from gateway.pipeline.forward import Answer
from gateway.providers import EventStream
from gateway.shutdown import MESSAGE as SHUTDOWN_MESSAGE
from gateway.translate import StreamTranslation
from policies.guardrails import StreamGuard

if TYPE_CHECKING:
    from gateway.pipeline.run import Call

log = logging.getLogger("agentgw.stream")

Send = Callable[[bytes], Awaitable[None]]


class StreamRelay:
    """One open stream of one call; `run(send)` relays it to the end and finishes the call."""

    def __init__(
        self, call: Call, stream: EventStream, first: Event, answer: Answer, guard: StreamGuard | None
    ) -> None:
        self._call = call
        self._stream = stream
        self._first = first
        self._answer = answer
        self._guard = guard  # output guardrails: they may hold, rewrite or block what is sent
        self._translation: StreamTranslation | None = answer.translation.stream()
        self._api = call.request.api
        self._model = call.request.model if call.shows_requested(answer.target) else None
        self._state = StreamState()
        self._usage: Usage | None = None
        self._output: list[str] = []  # the text sent, for capture and estimates
        self._error: GatewayError | None = None

    async def run(self, send: Send) -> None:
        """Relay every event; cancelled when the client goes away. Never raises a GatewayError: a
        failure becomes the stream's error events."""
        outcome = "ok"
        shutdown = self._call.runtime.services.shutdown
        untrack = shutdown.track(asyncio.current_task())
        try:
            await self._relay(send)
        except asyncio.CancelledError:
            if not shutdown.was_cut():
                outcome = "client_disconnected"  # not an error of the call's: it was cut by its client
                raise
            outcome = "shutdown"
            await self._fail(ServiceUnavailable(SHUTDOWN_MESSAGE, retry_after=1), send)
        except OSError:
            outcome = "client_disconnected"
            raise
        finally:
            untrack()
            with contextlib.suppress(BaseException):
                await self._stream.aclose()
            self._end("error" if self._error is not None and outcome == "ok" else outcome)

    async def _relay(self, send: Send) -> None:
        blocked: str | None = None
        try:
            blocked = await self._upstream(self._first, send)
            if blocked is None:
                async for event in self._stream:
                    if (blocked := await self._upstream(event, send)) is not None:
                        break
            if blocked is None and self._translation is not None:  # the closing events of a translation
                usage = self._final_usage()
                blocked = await self._client_events(self._translation.finish(usage), send)
            if blocked is None and self._guard is not None:  # the upstream ended: release what is held
                step = await self._guard.finish()
                blocked = step.blocked_by
                if blocked is None:
                    await self._send_all(step.chunks, send)
            if blocked is not None:
                await self._fail(guardrail_blocked(blocked, "output"), send)
            else:
                end = self._api.stream_end()
                if end:
                    await send(end)
        except UpstreamProblem as problem:
            error_cls = UpstreamTimedOut if problem.kind == "timeout" else UpstreamFailed
            message = f"The upstream stream failed after it started: {problem.detail}"
            await self._fail(error_cls(message, attempts=self._attempts(problem)), send)
        except GatewayError as error:
            await self._fail(error, send)
        except (asyncio.CancelledError, OSError):
            raise
        except Exception:
            log.exception("stream relay failed")
            await self._fail(internal_error(), send)

    async def _upstream(self, event: Event, send: Send) -> str | None:
        """One provider event: note its usage, turn it into the client's events and send them; the
        name of the guardrail that blocked the stream, or None."""
        if event.usage is not None:
            self._usage = event.usage
        if not event.visible:
            return None
        if self._translation is None:
            return await self._client_event(event.data, event.raw, send)
        return await self._client_events(self._translation.feed(event.data), send)

    async def _client_events(self, events: list[dict[str, Any]], send: Send) -> str | None:
        for data in events:
            if (blocked := await self._client_event(data, None, send)) is not None:
                return blocked
        return None

    async def _client_event(self, data: dict[str, Any], raw: bytes | None, send: Send) -> str | None:
        record, api = self._call.record, self._api
        reasons = api.finish_reasons(data)
        if reasons:
            record.finish_reasons += reasons
        if self._model is not None:
            replaced = api.set_stream_model(data, self._model)
            if replaced is not None and raw is not None:
                raw = renamed(raw, replaced, self._model)
        if self._guard is None:
            await self._send(data, raw, send)
            return None
        step = self._guard.feed(data)
        if step.blocked_by is None:
            await self._send_all(step.chunks, send)
        return step.blocked_by

    async def _send_all(self, events: list[dict[str, Any]], send: Send) -> None:
        for data in events:
            await self._send(data, None, send)

    async def _send(self, data: dict[str, Any], raw: bytes | None, send: Send) -> None:
        self._api.observe(self._state, data)
        text = self._api.event_text(data)
        if text:
            self._output.append(text)
        await send(self._api.frame(data, raw))

    async def _fail(self, error: GatewayError, send: Send) -> None:
        self._error = error
        for data in self._api.stream_error(error, self._state):
            await send(self._api.frame(data))

    def _attempts(self, problem: UpstreamProblem) -> list[Attempt]:
        """The call's attempts, this stream's broken one last, for the error event."""
        answer = self._answer
        broken = Attempt(answer.provider.name, answer.target.model, problem.error_kind(), None, problem.detail)
        return [*answer.failed, broken]

    def _final_usage(self) -> Usage:
        call, answer = self._call, self._answer
        return call.stream_usage(answer.target, "".join(self._output), self._stream.reported_usage(), self._usage)

    def _end(self, outcome: str) -> None:
        """Finish the call with what was relayed."""
        call, answer = self._call, self._answer
        if self._guard is not None:
            call.verdicts(self._guard.verdicts)
        error = self._error
        if outcome == "error" and error is not None and error.code != "guardrail_blocked":
            call.runtime.services.health.record_failure(answer.target, "5xx")  # the provider broke it
        usage = self._final_usage()
        cost = call.runtime.meter.cost_nanos(answer.target.model, usage)
        output = "".join(self._output)
        call.finish(
            usage=usage, cost=cost, outcome=outcome, error=error, status=200, ended=time.perf_counter(), output=output
        )
