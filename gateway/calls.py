"""One call, from a valid body to its end: route, admit, forward, settle.

A call finishes exactly once, whatever happens: refused before it was admitted (unknown model,
not allowed), answered, failed upstream, a stream cut short or abandoned by the client. Finishing
ends its span, counts its metrics and, for an admitted call, queues its one usage event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

from gateway.admission import Held
from gateway.context import CallContext
from gateway.errors import (
    Attempt,
    BudgetExceeded,
    ClientGone,
    GatewayError,
    GuardrailBlocked,
    RateLimited,
    UpstreamProblem,
    internal_error,
)
from gateway.features import request_features
from gateway.forward import Answer
from gateway.guards import blocked, labels, records
from gateway.metering.events import UsageEvent
from gateway.metering.meter import format_usd, output_text
from gateway.metering.usage import Usage
from gateway.providers import Chunk, ChunkStream, Completion, Provider
from gateway.providers.base import Operation
from gateway.responses import JSONBytes
from gateway.runtime import Runtime
from gateway.streaming import SSEResponse, StreamResult
from gateway.telemetry import semconv
from gateway.telemetry.otlp import SpanData
from policies.guardrails import StreamGuard, Verdict
from routing import Plan, RequestFeatures, Target

log = logging.getLogger("agentgw.calls")


def _as_error(exc: BaseException) -> GatewayError:
    """What a call that ended in `exc` reports: itself when it is a GatewayError, else a client that
    went away (the task was cancelled) or an internal error (logged where it happened)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, asyncio.CancelledError):
        return ClientGone("The client went away before the call finished.")
    log.error("call failed: %s", type(exc).__name__, exc_info=exc)
    return internal_error()


class Call:
    def __init__(
        self,
        runtime: Runtime,
        ctx: CallContext,
        body: dict[str, Any],
        operation: Operation,
        requested_model: str,
        incoming: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.runtime = runtime
        self._headers = headers or {}  # request headers routing rules may look at
        self.ctx = ctx
        self.body = body
        self.operation = operation
        self.stream = operation == "chat" and body.get("stream") is True
        self.plan: Plan | None = None
        self.held = Held()  # what admission holds on rate limits and budgets until the call settles
        self.guard = runtime.guards.for_principal(ctx.principal)
        self.verdicts: list[Verdict] = []
        self._stream_guard: StreamGuard | None = None
        self.admitted = False
        self._finished = False
        self.facts = semconv.CallFacts(
            operation=operation,
            request_model=requested_model,
            body=body,
            session=ctx.session,
            agent=ctx.agent,
            team=ctx.team,
            task=ctx.task,
            tags=ctx.tags,
            key_name=ctx.key_name,
        )
        telemetry = runtime.services.telemetry
        self.span = telemetry.tracing.start_call(semconv.span_name(operation, requested_model), incoming)
        self._attempt_span: SpanData | None = None
        self._failed: tuple[Attempt, ...] = ()  # upstream attempts that failed, for the ledger
        # The caller's trace context reaches the provider; with tracing on, each attempt's own
        # `traceparent` replaces the caller's, while `tracestate` (vendor data) is carried as sent.
        self._passthrough = {name: incoming[name] for name in ("traceparent", "tracestate") if name in incoming}
        if telemetry.metrics is not None:
            telemetry.metrics.in_flight.inc()

    async def run(self) -> Response:
        """Guard, route and admit the call, then forward it. Whatever happens, the call is finished
        (once) before this returns or raises; refusals and failures raise after that."""
        try:
            await self._guard_input()
            self.plan, _features = await self._route()
            self.held = await self.runtime.gate.admit(self.ctx, self.plan, self.body)
            if self.held.plan is not None:  # a target's per-model limit was full: the route goes on without it
                self.plan = self.held.plan
                self.facts.skipped = [f"{model}:{reason}" for model, reason in self.plan.skipped()]
            self.admitted = True
            return await (self._stream() if self.stream else self._complete())
        except BaseException as exc:
            self.finish(error=_as_error(exc))
            raise

    async def _guard_input(self) -> None:
        """Input guardrails: block the call, or forward a redacted copy of its body."""
        guard = self.guard
        if guard is None or not guard.has_input_guards:
            return
        if self.operation == "embeddings":
            result = await guard.scan_embeddings(self.body)
        else:
            result = await guard.scan_request(self.body)
        self._verdicts(result.verdicts)
        if result.blocked_by is not None:
            raise blocked(result.blocked_by, "input")
        self.body = self.facts.body = result.body

    def _verdicts(self, verdicts: Sequence[Verdict]) -> None:
        if not verdicts:
            return
        self.verdicts += verdicts
        metrics = self.runtime.services.telemetry.metrics
        if metrics is not None:
            for v in verdicts:
                metrics.child(metrics.guardrails, v.guardrail, v.phase, v.action).inc()

    async def _route(self) -> tuple[Plan, RequestFeatures]:
        runtime, ctx, requested = self.runtime, self.ctx, self.facts.request_model
        runtime.check_requested(ctx.principal, requested)
        router = runtime.router
        headers = {name: value for name, value in self._headers.items() if name in router.rule_headers()}
        remaining: tuple[float | None, float | None] = (None, None)
        if router.may_downgrade(requested):  # the route gets cheaper near a budget's cap: look the budget up
            remaining = await runtime.gate.remaining(ctx)
        features = request_features(
            self.body,
            self.operation,
            ctx,
            requested,
            router.allowed_models(ctx.principal.models),
            headers,
            *remaining,
        )
        plan = runtime.plan(features)
        facts = self.facts
        facts.route, facts.strategy, facts.rule, facts.downgraded = (
            plan.route,
            plan.strategy,
            plan.rule,
            plan.downgraded,
        )
        facts.skipped = [f"{model}:{reason}" for model, reason in plan.skipped()]
        return plan, features

    # -- forwarding -------------------------------------------------------------------------

    @property
    def upstream_headers(self) -> dict[str, str]:
        """What the provider learns about the call: its request id and trace context, nothing of the
        client's key."""
        return {"x-request-id": self.ctx.request_id, **self._passthrough}

    async def _complete(self) -> Response:
        assert self.plan is not None
        completion, answer = await self.runtime.forwarder.complete(
            self.plan, self.body, self.operation, self.upstream_headers, self
        )
        self._answered_by(answer, completion.data)
        usage = completion.usage or self._estimate(answer.target, completion)
        cost = self.runtime.meter.cost_nanos(answer.target.model, usage)
        try:
            data, raw = completion.data, completion.raw
            if self.guard is not None and self.guard.has_output_guards and self.operation == "chat":
                result = await self.guard.scan_response(data)
                self._verdicts(result.verdicts)
                if result.blocked_by is not None:  # billed, but the client never sees it
                    raise blocked(result.blocked_by, "output")
                if result.modified:
                    data, raw = result.body, None
        except BaseException as exc:  # the provider answered and billed: settle with what it cost
            self.finish(error=_as_error(exc), usage=usage, cost=cost)
            raise
        self.finish(usage=usage, cost=cost, output=data.get("choices"))
        body = raw if raw is not None else orjson.dumps(data)
        headers = {**self._answer_headers(answer), "x-agentgw-cost-usd": format_usd(cost)}
        return JSONBytes(body, headers)

    async def _stream(self) -> Response:
        assert self.plan is not None
        (stream, first), answer = await self.runtime.forwarder.open_stream(
            self.plan, self.body, self.upstream_headers, self
        )
        try:
            return self._relay(stream, first, answer)
        except BaseException:
            await stream.aclose()  # the relay never started: release the upstream connection
            raise

    def _relay(self, stream: ChunkStream, first: Chunk, answer: Answer) -> Response:
        self.facts.ttft_s = time.perf_counter() - self.ctx.started
        self._answered_by(answer, first.data)

        async def on_end(result: StreamResult) -> None:
            if self._stream_guard is not None:
                self._verdicts(self._stream_guard.verdicts)
            if result.outcome == "error" and not isinstance(result.error, GuardrailBlocked):
                # the provider broke the stream: count it against the target
                self.runtime.services.health.record_failure(answer.target, "5xx")
            self.facts.finish_reasons = result.finish_reasons
            usage = result.usage or self.runtime.meter.complete_stream_usage(
                answer.target, self.body, result.output_text, stream.reported_usage()
            )
            cost = self.runtime.meter.cost_nanos(answer.target.model, usage)
            finish_reason = result.finish_reasons[-1] if result.finish_reasons else None
            output = [{"message": {"content": result.output_text}, "finish_reason": finish_reason}]
            self.finish(
                usage=usage,
                cost=cost,
                outcome=result.outcome,
                error=result.error,
                status=200,
                ended=result.ended,
                output=output,
            )

        guard = self.guard.stream_guard() if self.guard is not None and self.guard.has_output_guards else None
        self._stream_guard = guard

        def attempts(problem: UpstreamProblem) -> list[Attempt]:
            broken = Attempt(answer.provider.name, answer.target.model, problem.error_kind(), None, problem.detail)
            return [*answer.failed, broken]

        return SSEResponse(stream, first, self._answer_headers(answer), on_end, guard, attempts)

    # -- the forwarder's attempt hooks ------------------------------------------------------

    def attempt_started(self, target: Target, provider: Provider, number: int) -> Mapping[str, str]:
        """A child span per upstream attempt; its context is what the provider receives."""
        if self.span is None:
            return {}
        name = semconv.span_name(self.operation, target.model)
        attrs = semconv.attempt_attributes(self.operation, target.model, provider.kind, provider.address, number)
        self._attempt_span = self.runtime.services.telemetry.tracing.start_attempt(self.span, name, attrs)
        return (
            {}
            if self._attempt_span is None
            else self.runtime.services.telemetry.tracing.traceparent(self._attempt_span)
        )

    def attempt_ended(self, target: Target, provider: Provider, problem: UpstreamProblem | None) -> None:
        metrics = self.runtime.services.telemetry.metrics
        if problem is not None and metrics is not None:
            metrics.child(metrics.upstream_errors, provider.name, target.model, problem.error_kind()).inc()
        if problem is None and self.stream:
            return  # an open stream's attempt lasts as long as the stream: it ends when the call does
        self._end_attempt(None if problem is None else problem.error_kind())

    def _end_attempt(self, error_type: str | None) -> None:
        span, self._attempt_span = self._attempt_span, None
        if span is not None:
            attrs = {} if error_type is None else semconv.error_attributes(error_type)
            self.runtime.services.telemetry.tracing.end(span, attrs, error_type)

    def fell_back(self, target: Target) -> None:
        metrics = self.runtime.services.telemetry.metrics
        if metrics is not None:
            metrics.child(metrics.fallbacks, target.provider, target.model).inc()

    # -- settling ---------------------------------------------------------------------------

    def _answered_by(self, answer: Answer, data: Mapping[str, Any]) -> None:
        facts = self.facts
        facts.provider, facts.provider_kind, facts.model = (
            answer.provider.name,
            answer.provider.kind,
            answer.target.model,
        )
        facts.server = answer.provider.address
        facts.attempts = answer.attempts
        facts.response_model = data.get("model") if isinstance(data.get("model"), str) else None
        facts.response_id = data.get("id") if isinstance(data.get("id"), str) else None
        choices = data.get("choices")
        if isinstance(choices, list):
            facts.finish_reasons = [
                c["finish_reason"] for c in choices if isinstance(c, dict) and isinstance(c.get("finish_reason"), str)
            ]
        self._failed = tuple(answer.failed)

    def _answer_headers(self, answer: Answer) -> dict[str, str]:
        headers = {
            **self.held.headers,
            "x-agentgw-model": answer.target.model,
            "x-agentgw-provider": answer.provider.name,
        }
        if self.facts.route is not None:
            headers["x-agentgw-route"] = self.facts.route
        return headers

    def _estimate(self, target: Target, completion: Completion) -> Usage:
        meter = self.runtime.meter
        if self.operation == "embeddings":
            return meter.estimate_embeddings(target, self.body)
        return meter.estimate_chat(target, self.body, output_text(completion.data))

    def finish(
        self,
        *,
        error: GatewayError | None = None,
        status: int | None = None,
        usage: Usage | None = None,
        cost: int = 0,
        outcome: str | None = None,
        ended: float | None = None,
        output: Any = None,
    ) -> None:
        """End the call once: its budgets and limits settled and its ledger event queued (an admitted
        call), then its metrics and span. `status` is what the client got (a stream that failed after
        it started got a 200). Telemetry failing must not cost the settlement, so it comes last."""
        if self._finished:
            return
        self._finished = True
        ended = ended or time.perf_counter()
        if self._attempt_span is not None:  # a stream's attempt: failed if the provider broke it
            broken = error is not None and not isinstance(error, ClientGone | GuardrailBlocked)
            self._end_attempt(error.code if broken and error is not None else None)
        facts = self.facts
        facts.status = status or (error.status if error is not None else 200)
        facts.error_type = error.code if error is not None else None
        facts.guardrails = labels(self.verdicts)
        facts.usage, facts.cost_nanos = usage, cost
        if error is not None and error.attempts:
            self._failed = error.attempts
            facts.attempts = len(error.attempts)
            facts.provider = facts.provider or error.attempts[-1].provider
            facts.model = facts.model or error.attempts[-1].model
        if outcome is None:
            outcome = "client_disconnected" if isinstance(error, ClientGone) else "error" if error else "ok"
        telemetry = self.runtime.services.telemetry
        input_messages = output_messages = None
        if self.admitted:
            if telemetry.capture.enabled:
                input_messages, output_messages = self._capture(output, telemetry.capture.max_chars)
            self.runtime.gate.settle(self.held, cost, usage)
            if self.held.budgets:
                remaining = self.held.reservation.remaining_after(cost)
                facts.budget_remaining_usd = {kind: nanos / 1e9 for kind, nanos in remaining.items()}
            self._record(ended, outcome, input_messages, output_messages)
        try:
            self._count(ended, outcome, error)
            if self.span is not None:
                attrs = semconv.call_attributes(facts)
                if input_messages is not None:
                    attrs["gen_ai.input.messages"] = input_messages
                if output_messages is not None:
                    attrs["gen_ai.output.messages"] = output_messages
                attrs["agentgw.outcome"] = outcome  # ok | error | client_disconnected (not an error of ours)
                telemetry.tracing.end(self.span, attrs, facts.error_type)
        except Exception:
            log.exception("telemetry for request %s failed", self.ctx.request_id)

    def _capture(self, output: Any, max_chars: int) -> tuple[str | None, str | None]:
        """The call's messages for spans and replay, after the redacting guardrails (best effort)."""
        try:
            inputs = semconv.input_messages(self.body, max_chars)
            return inputs, semconv.output_messages(output, max_chars) if output else None
        except Exception:
            log.exception("content capture for request %s failed", self.ctx.request_id)
            return None, None

    def _count(self, ended: float, outcome: str, error: GatewayError | None) -> None:
        facts = self.facts
        metrics = self.runtime.services.telemetry.metrics
        if metrics is None:
            return
        metrics.in_flight.dec()
        code = facts.error_type or ("client_disconnected" if outcome == "client_disconnected" else "ok")
        metrics.child(metrics.requests, self.operation, str(facts.status), code).inc()
        if isinstance(error, RateLimited):
            metrics.child(metrics.rate_limited, error.limit).inc()
        elif isinstance(error, BudgetExceeded):
            metrics.child(metrics.budget_rejected, error.scope).inc()
        if not self.admitted:
            return
        provider = semconv.provider_name(facts.provider_kind) or facts.provider or ""
        metrics.observe_call(
            operation=self.operation,
            provider=provider,
            request_model=facts.request_model,
            response_model=facts.response_model or facts.model or "",
            error_type=facts.error_type,
            duration_s=ended - self.ctx.started,
            ttfc_s=facts.ttft_s if self.stream else None,
            usage=facts.usage,
        )
        if facts.cost_nanos:
            agent = metrics.bounded("agent", self.ctx.agent)
            metrics.child(metrics.cost, self.ctx.team, agent, facts.model or "").inc(facts.cost_nanos / 1e9)

    def _record(self, ended: float, outcome: str, input_messages: str | None, output_messages: str | None) -> None:
        if not self.runtime.meter.recording:
            return
        facts, ctx = self.facts, self.ctx
        self.runtime.meter.record(
            UsageEvent(
                ts=ctx.received_at,
                request_id=ctx.request_id,
                client_request_id=ctx.client_request_id,
                key_name=ctx.key_name,
                team=ctx.team,
                agent=ctx.agent,
                task=ctx.task,
                session=ctx.session,
                tags=ctx.tags,
                operation=self.operation,
                requested_model=facts.request_model,
                route=facts.route,
                model=facts.model,
                provider=facts.provider,
                stream=self.stream,
                status=facts.status or 200,
                outcome=outcome,
                error_type=facts.error_type,
                usage=facts.usage or Usage(),
                cost_nanos=facts.cost_nanos or 0,
                latency_ms=(ended - ctx.started) * 1000,
                ttft_ms=None if facts.ttft_s is None else facts.ttft_s * 1000,
                attempts=facts.attempts,
                attempt_log=[a.as_dict() for a in self._failed],
                trace_id=f"{self.span.trace_id:032x}" if self.span is not None else None,
                input_messages=input_messages,
                output_messages=output_messages,
                guardrails=records(self.verdicts),
            )
        )
