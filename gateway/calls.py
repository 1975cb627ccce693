"""One admitted call, from forwarding to settling.

Everything before admission (auth, attribution, parsing, routing) has already happened; from
here on the call settles exactly once, whatever happens: an answer, an upstream failure, a
stream cut short or abandoned by the client. Settling turns the usage into cost and queues one
usage event for the ledger.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.responses import Response

from gateway.context import CallContext
from gateway.errors import Attempt, GatewayError, internal_error
from gateway.forward import Answer
from gateway.metering.events import UsageEvent
from gateway.metering.meter import format_usd, output_text
from gateway.metering.usage import Usage
from gateway.providers import Completion
from gateway.providers.base import Operation
from gateway.runtime import Runtime
from gateway.streaming import SSEResponse, StreamResult
from routing import Plan

NO_USAGE = Usage()


class Call:
    def __init__(
        self, runtime: Runtime, ctx: CallContext, plan: Plan, body: dict[str, Any], operation: Operation
    ) -> None:
        self.runtime = runtime
        self.ctx = ctx
        self.plan = plan
        self.body = body
        self.operation = operation
        self._settled = False

    @property
    def upstream_headers(self) -> dict[str, str]:
        """What the provider learns about the call: its request id, nothing of the client's key."""
        return {"x-request-id": self.ctx.request_id}

    async def complete(self) -> Response:
        """Forward a non-streaming call and answer with the provider's response."""
        try:
            completion, answer = await self.runtime.forwarder.complete(
                self.plan, self.body, self.operation, self.upstream_headers
            )
        except GatewayError as error:
            self._settle_failure(error)
            raise
        except BaseException:
            self._settle_failure(internal_error())
            raise
        usage = completion.usage or self._estimate(answer, completion)
        cost = self.runtime.meter.cost_nanos(answer.target.model, usage)
        self._settle(answer, 200, "ok", usage, cost)
        body = completion.raw if completion.raw is not None else orjson.dumps(completion.data)
        headers = {**self._answer_headers(answer), "x-agentgw-cost-usd": format_usd(cost)}
        return Response(body, media_type="application/json", headers=headers)

    async def stream(self) -> Response:
        """Open the stream (falling back before the first chunk) and relay it."""
        try:
            (stream, first), answer = await self.runtime.forwarder.open_stream(
                self.plan, self.body, self.upstream_headers
            )
        except GatewayError as error:
            self._settle_failure(error)
            raise
        except BaseException:
            self._settle_failure(internal_error())
            raise
        first_chunk_at = time.perf_counter()

        async def on_end(result: StreamResult) -> None:
            self._settle_stream(answer, result, first_chunk_at)

        return SSEResponse(stream, first, self._answer_headers(answer), on_end)

    def _answer_headers(self, answer: Answer) -> dict[str, str]:
        headers = {"x-agentgw-model": answer.target.model, "x-agentgw-provider": answer.provider.name}
        if self.plan.route is not None:
            headers["x-agentgw-route"] = self.plan.route
        return headers

    def _estimate(self, answer: Answer, completion: Completion) -> Usage:
        meter = self.runtime.meter
        if self.operation == "embeddings":
            return meter.estimate_embeddings(answer.target, self.body)
        return meter.estimate_chat(answer.target, self.body, output_text(completion.data))

    def _settle_stream(self, answer: Answer, result: StreamResult, first_chunk_at: float) -> None:
        usage = result.usage or self.runtime.meter.estimate_chat(answer.target, self.body, result.output_text)
        cost = self.runtime.meter.cost_nanos(answer.target.model, usage)
        ttft_ms = (first_chunk_at - self.ctx.started) * 1000
        error = result.error.code if result.error is not None else None
        self._settle(answer, 200, result.outcome, usage, cost, error_type=error, ttft_ms=ttft_ms, ended=result.ended)

    def _settle_failure(self, error: GatewayError) -> None:
        attempts = list(error.attempts)
        last = attempts[-1] if attempts else None
        self._record(
            model=last.model if last else None,
            provider=last.provider if last else None,
            status=error.status,
            outcome="error",
            usage=NO_USAGE,
            cost=0,
            error_type=error.code,
            attempts=attempts,
        )

    def _settle(
        self,
        answer: Answer,
        status: int,
        outcome: str,
        usage: Usage,
        cost: int,
        *,
        error_type: str | None = None,
        ttft_ms: float | None = None,
        ended: float | None = None,
    ) -> None:
        self._record(
            model=answer.target.model,
            provider=answer.provider.name,
            status=status,
            outcome=outcome,
            usage=usage,
            cost=cost,
            error_type=error_type,
            attempts=answer.failed,
            answered=True,
            ttft_ms=ttft_ms,
            ended=ended,
        )

    def _record(
        self,
        *,
        model: str | None,
        provider: str | None,
        status: int,
        outcome: str,
        usage: Usage,
        cost: int,
        error_type: str | None,
        attempts: list[Attempt],
        answered: bool = False,
        ttft_ms: float | None = None,
        ended: float | None = None,
    ) -> None:
        """`attempts` are the failed ones; `answered` says one more attempt gave the answer."""
        if self._settled:
            return
        self._settled = True
        ctx = self.ctx
        self.runtime.meter.record(
            UsageEvent(
                ts=ctx.received_at,
                request_id=ctx.request_id,
                key_name=ctx.key_name,
                team=ctx.team,
                agent=ctx.agent,
                task=ctx.task,
                session=ctx.session,
                tags=ctx.tags,
                operation=self.operation,
                requested_model=self.plan.requested,
                route=self.plan.route,
                model=model,
                provider=provider,
                stream=self.body.get("stream") is True,
                status=status,
                outcome=outcome,
                error_type=error_type,
                usage=usage,
                cost_nanos=cost,
                latency_ms=((ended or time.perf_counter()) - ctx.started) * 1000,
                ttft_ms=ttft_ms,
                attempts=len(attempts) + answered,
                attempt_log=[a.as_dict() for a in attempts],
            )
        )
