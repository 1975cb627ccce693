"""One call, from a canonical request to its end: guard, route, admit, forward, answer, finish.

The same steps for every API; what differs per API is asked of the call's `Api` (its shape, its
errors, its stream framing) and of the translation that carries it to each target. A call finishes
exactly once, whatever happens: refused before it was admitted, answered, failed upstream, a stream
cut short or abandoned by the client. Finishing hands the call's record to the sinks.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.admission import Demand, Held
from gateway.apis.base import Shape, encode, renamed
from gateway.apis.sizes import estimated_prompt_tokens, reserve_prompt_tokens
from gateway.errors import Attempt, ClientGone, GatewayError, ServiceUnavailable, UpstreamProblem, internal_error
from gateway.guards import blocked
from gateway.metering.meter import format_usd
from gateway.metering.usage import Usage
from gateway.pipeline import sinks
from gateway.pipeline.call import CallRecord, CallRequest
from gateway.pipeline.count import PromptCount
from gateway.pipeline.forward import Answer, Outbound
from gateway.pipeline.relay import StreamRelay
from gateway.providers import Completion, Provider
from gateway.shutdown import MESSAGE as SHUTDOWN_MESSAGE
from gateway.telemetry import semconv
from gateway.telemetry.otlp import SpanData
from policies.guardrails import GuardrailSet, Verdict
from routing import Plan, RequestFeatures, Target

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger("agentgw.calls")

NO_DEMAND = Demand(lambda: 0, None)


@dataclass(slots=True)
class Reply:
    """A whole answer: JSON bytes in the client's API shape, and the headers that go with them."""

    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class StreamReply:
    """An open stream: `relay` sends its events as SSE bytes and finishes the call however it ends."""

    headers: dict[str, str]
    relay: StreamRelay


async def run_call(runtime: Runtime, request: CallRequest) -> Reply | StreamReply:
    """Run one call; raises the `GatewayError` that refused or failed it (already finished)."""
    return await Call(runtime, request).run()


def as_error(exc: BaseException) -> GatewayError:
    """What a call that ended in `exc` reports: itself when it is a GatewayError, else a client that
    went away (the task was cancelled) or an internal error (logged where it happened)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, asyncio.CancelledError):
        return ClientGone("The client went away before the call finished.")
    log.error("call failed: %s", type(exc).__name__, exc_info=exc)
    return internal_error()


class Call:
    """The steps of one call, and the forwarder's hooks into its attempts."""

    def __init__(self, runtime: Runtime, request: CallRequest) -> None:
        self.runtime = runtime
        self.request = request
        telemetry = runtime.services.telemetry
        span = telemetry.tracing.start_call(semconv.span_name(request.api.operation, request.model), request.trace)
        self.record = CallRecord(request, request.body, span=span)
        self.plan: Plan | None = None
        self.held = Held()  # what admission holds on rate limits and budgets until the call settles
        self.demand = NO_DEMAND  # until admission sizes the call
        self._shape: Shape | None = None
        self._renewal: asyncio.TimerHandle | None = None
        self.guard: GuardrailSet | None = runtime.guards.for_principal(request.ctx.principal)
        self._attempt_span: SpanData | None = None
        self._finished = False
        if telemetry.metrics is not None:
            telemetry.metrics.in_flight.inc()

    async def run(self) -> Reply | StreamReply:
        """Guard, route and admit the call, then forward it. Whatever happens, the call is finished
        (once) before this returns or raises; refusals and failures raise after that."""
        untrack = self.runtime.services.shutdown.track(asyncio.current_task())
        try:
            # The version first (of the request as sent): calls a guardrail blocks or a limit refuses count too.
            request = self.request
            versions = self.runtime.versions
            self.record.agent_version = versions.assign(request.ctx, request.api.name, request.body, request.model)
            if self.guard is not None and self.guard.has_input_guards:
                await self._guard_input()
            shape = self._shape = self.request.api.shape(self.record.body)
            self.plan = await self._route(shape)
            held = self.runtime.gate.unheld(self.request.ctx, self.plan)
            self.held = held if held is not None else await self._admit()
            if self.held.plan is not None:  # a target's per-model limit was full: the route goes on without it
                self.plan = self.held.plan
                self.record.skipped = [f"{model}:{reason}" for model, reason in self.plan.skipped()]
            self.record.admitted = True
            return await (self._stream() if self.request.stream else self._complete())
        except asyncio.CancelledError:
            if not self.runtime.services.shutdown.was_cut():
                self.finish(error=as_error(asyncio.CancelledError()))
                raise
            raise self._cut() from None
        except BaseException as exc:
            self.finish(error=as_error(exc))
            raise
        finally:
            untrack()

    async def _admit(self) -> Held:
        """Count the call against its limits and hold its worst case against its budgets."""
        assert self.plan is not None
        held = await self.runtime.gate.admit(self.request.ctx, self.plan, self._demand())
        self._keep_held(held)
        return held

    def _demand(self) -> Demand:
        """The most the call may use, as admission sizes it (worked out when first needed)."""
        if self.demand is NO_DEMAND and self._shape is not None:
            body, shape = self.record.body, self._shape
            count = PromptCount(self.request.api, body, self.runtime.providers, self.runtime.services.counter)
            bound = functools.partial(reserve_prompt_tokens, body, shape.messages)
            self.demand = Demand(bound, shape.max_output, shape.choices, count)
        return self.demand

    def _cut(self) -> GatewayError:
        """The gateway's shutdown cut the call: a 503 in the client's shape; an admitted call is
        recorded with its prompt counted (the provider may have billed it), outcome `shutdown`."""
        error = ServiceUnavailable(SHUTDOWN_MESSAGE, retry_after=1)
        usage, cost = None, 0
        if self.record.admitted and self.plan is not None:
            target = self.plan.targets[0]
            usage = self._estimate(target, "")
            cost = self.runtime.meter.cost_nanos(target.model, usage)
        self.finish(error=error, outcome="shutdown", usage=usage, cost=cost)
        return error

    # -- guard, route ----------------------------------------------------------------------------

    async def _guard_input(self) -> None:
        """Input guardrails: block the call, or forward a redacted copy of its body."""
        guard = self.guard
        assert guard is not None
        shape = self.request.api.guard_shape
        if shape is None:
            result = await guard.scan_embeddings(self.record.body)
        else:
            result = await guard.scan_request(self.record.body, api=shape)
        self.verdicts(result.verdicts)
        if result.blocked_by is not None:
            raise blocked(result.blocked_by, "input")
        self.record.body = result.body

    def verdicts(self, verdicts: tuple[Verdict, ...] | list[Verdict]) -> None:
        if not verdicts:
            return
        self.record.verdicts += verdicts
        metrics = self.runtime.services.telemetry.metrics
        if metrics is not None:
            for v in verdicts:
                if v.count:  # a flag guardrail's score-only verdict found nothing
                    metrics.child(metrics.guardrails, v.guardrail, v.phase, v.action).inc()

    async def _route(self, shape: Shape) -> Plan:
        runtime, request = self.runtime, self.request
        ctx, requested = request.ctx, request.model
        runtime.check_requested(ctx.principal, requested)
        router = runtime.router
        remaining: tuple[float | None, float | None] = (None, None)
        if router.may_downgrade(requested):  # the route gets cheaper near a budget's cap: look the budget up
            remaining = await runtime.gate.remaining(ctx)
        rule_headers = router.rule_headers()
        features = RequestFeatures(
            requested_model=requested,
            operation="embeddings" if request.api.operation == "embeddings" else "chat",
            team=ctx.team,
            agent=ctx.agent,
            task=ctx.task,
            session=ctx.session,
            tags=ctx.tags,
            headers={name: value for name, value in request.headers.items() if name in rule_headers},
            est_prompt_tokens=estimated_prompt_tokens(shape),
            max_tokens=shape.max_output,
            needs_tools=shape.tools,
            needs_json_schema=shape.json_schema,
            needs_vision=shape.images > 0,
            stream=shape.stream,
            allowed_models=router.allowed_models(ctx.principal.models),
            budget_remaining_usd=remaining[0],
            budget_fraction_remaining=remaining[1],
            native_api=request.api.name if shape.native_only else None,
            native_param=shape.native_only,
        )
        plan = runtime.plan(features)
        record = self.record
        record.route, record.strategy, record.rule, record.downgraded = (
            plan.route,
            plan.strategy,
            plan.rule,
            plan.downgraded,
        )
        record.skipped = [f"{model}:{reason}" for model, reason in plan.skipped()]
        return plan

    # -- forwarding ------------------------------------------------------------------------------

    def _outbound(self) -> Outbound:
        """What the providers receive: the call's body and request id, its trace context (each
        attempt's own `traceparent` when tracing is on; `tracestate` as the caller sent it), nothing
        of the client's key; a provider speaking the client's API also gets the client's API headers."""
        request = self.request
        headers = {"x-request-id": request.ctx.request_id, **request.trace}
        names = request.api.native_headers
        native = {name: request.headers[name] for name in names if name in request.headers} if names else {}
        return Outbound(request.api, self.record.body, headers, native)

    async def _complete(self) -> Reply:
        assert self.plan is not None
        completion, answer = await self.runtime.forwarder.complete(self.plan, self._outbound(), self)
        api = self.request.api
        self._answered_by(answer, completion.data)
        wire = answer.translation.wire
        usage = completion.usage or self._estimate(answer.target, wire.output_text(completion.data))
        data, raw = self._client_answer(completion, answer, usage)
        cost = self.runtime.meter.cost_nanos(answer.target.model, usage)
        self.record.finish_reasons = api.finish_reasons(data)
        try:
            if self.guard is not None and self.guard.has_output_guards and api.guard_shape is not None:
                result = await self.guard.scan_response(data, api=api.guard_shape)
                self.verdicts(result.verdicts)
                if result.blocked_by is not None:  # billed, but the client never sees it
                    raise blocked(result.blocked_by, "output")
                if result.modified:
                    data, raw = result.body, None
            if self.shows_requested(answer.target):
                replaced = api.set_model(data, self.request.model)
                if replaced is not None and raw is not None:
                    raw = renamed(raw, replaced, self.request.model)
            body = raw if raw is not None else encode(data)
        except BaseException as exc:  # the provider answered and billed: settle with what it cost
            self.finish(error=as_error(exc), usage=usage, cost=cost)
            raise
        self.finish(usage=usage, cost=cost, output=data)
        return Reply(body, {**self.answer_headers(answer), "x-agentgw-cost-usd": format_usd(cost)})

    def _client_answer(
        self, completion: Completion, answer: Answer, usage: Usage
    ) -> tuple[dict[str, Any], bytes | None]:
        """The answer in the client's API (translated back, with the call's usage, when it was translated)."""
        if answer.translation.passthrough:
            return completion.data, completion.raw
        return answer.translation.response(completion.data, usage), None

    async def _stream(self) -> StreamReply:
        assert self.plan is not None
        (stream, first), answer = await self.runtime.forwarder.open_stream(self.plan, self._outbound(), self)
        self.record.ttft_s = time.perf_counter() - self.request.ctx.started
        self._answered_by(answer, first.data)
        guard, shape = self.guard, self.request.api.guard_shape
        output_guard = guard.stream_guard(api=shape) if guard and guard.has_output_guards and shape else None
        relay = StreamRelay(self, stream, first, answer, output_guard)
        return StreamReply(self.answer_headers(answer), relay)

    def shows_requested(self, target: Target) -> bool:
        """Whether answers carry the requested name as `model` (else the provider's own)."""
        choice = target.spec.response_model or self.runtime.config.routing.response_model
        return choice == "requested"

    def _keep_held(self, held: Held) -> None:
        """Renew the call's leases and budget hold every third of their lifetime while it runs (a long
        stream would otherwise lose them); a timer, not a task: most calls end before it fires."""
        if not held.holds:
            return
        gate = self.runtime.gate
        interval = gate.policies.hold_seconds / 3
        loop = asyncio.get_running_loop()

        def due() -> None:
            gate.policies.spawn(gate.renew(self.held))
            self._renewal = loop.call_later(interval, due)

        self._renewal = loop.call_later(interval, due)

    # -- the forwarder's attempt hooks -----------------------------------------------------------

    def entering(self, target: Target) -> Awaitable[bool] | None:
        """Before an attempt: a fallback to another model counts against that model's own limits
        (None: nothing to count, the attempt goes)."""
        held = self.held
        if target.model == held.model or target.model in held.attempts:
            return None
        return self._enter(target)

    async def _enter(self, target: Target) -> bool:
        """False when the fallback's own per-model limits have no room (the attempt is skipped)."""
        if await self.runtime.gate.admit_attempt(self.request.ctx, self.held, target, self._demand()):
            return True
        self.record.skipped = [*self.record.skipped, f"{target.model}:rate_limited"]
        return False

    def attempt_started(self, target: Target, provider: Provider, number: int) -> Mapping[str, str]:
        """A child span per upstream attempt; its context is what the provider receives."""
        span = self.record.span
        if span is None:
            return {}
        operation = self.request.api.operation
        name = semconv.span_name(operation, target.model)
        attrs = semconv.attempt_attributes(operation, target.model, provider.kind, provider.address, number)
        tracing = self.runtime.services.telemetry.tracing
        self._attempt_span = tracing.start_attempt(span, name, attrs)
        return tracing.traceparent(self._attempt_span)

    def attempt_ended(self, target: Target, provider: Provider, problem: UpstreamProblem | None) -> None:
        metrics = self.runtime.services.telemetry.metrics
        if problem is not None and metrics is not None:
            metrics.child(metrics.upstream_errors, provider.name, target.model, problem.error_kind()).inc()
        if problem is None and self.request.stream:
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

    # -- answering -------------------------------------------------------------------------------

    def _answered_by(self, answer: Answer, wire_data: Mapping[str, Any]) -> None:
        record, wire = self.record, answer.translation.wire
        record.provider, record.provider_kind = answer.provider.name, answer.provider.kind
        record.model = answer.target.model
        record.server = answer.provider.address
        record.translated = not answer.translation.passthrough
        record.attempts = answer.attempts
        record.failed = tuple(answer.failed)
        record.response_id = wire.response_id(wire_data)
        model = _response_model(wire_data)
        record.response_model = model if isinstance(model, str) else None

    def answer_headers(self, answer: Answer) -> dict[str, str]:
        headers = {
            **self.held.headers,
            "x-agentgw-model": answer.target.model,
            "x-agentgw-provider": answer.provider.name,
        }
        if self.record.route is not None:
            headers["x-agentgw-route"] = self.record.route
        if self.record.agent_version is not None:
            headers["x-agentgw-agent-version"] = self.record.agent_version
        return headers

    def _estimate(self, target: Target, output_text: str) -> Usage:
        return self.runtime.meter.estimate(self.request.api, target, self.record.body, output_text)

    def stream_usage(self, target: Target, output_text: str, reported: Usage | None, final: Usage | None) -> Usage:
        """A stream's usage: the provider's final count, else what it reported so far completed by
        the gateway's own count of what was streamed (marked estimated)."""
        if final is not None:
            return final
        estimate = self._estimate(target, output_text)
        if reported is None or not reported.input_tokens:
            return estimate
        return Usage(
            input_tokens=reported.input_tokens,
            output_tokens=max(reported.output_tokens, estimate.output_tokens),
            cached_tokens=reported.cached_tokens,
            cache_write_tokens=reported.cache_write_tokens,
            reasoning_tokens=reported.reasoning_tokens,
            estimated=True,
        )

    # -- finishing -------------------------------------------------------------------------------

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
        """End the call once: its record completed, then every sink (settlement and the ledger for an
        admitted call, metrics, the span). `status` is what the client got (a stream that failed
        after it started got a 200). Telemetry failing must not cost the settlement: it comes last."""
        if self._finished:
            return
        self._finished = True
        record = self.record
        record.ended = ended or time.perf_counter()
        if self._attempt_span is not None:  # a stream's attempt: failed if the provider broke it
            broken = error is not None and not isinstance(error, ClientGone) and error.code != "guardrail_blocked"
            self._end_attempt(error.code if broken and error is not None else None)
        record.status = status or (error.status if error is not None else 200)
        record.error_type = error.code if error is not None else None
        record.usage, record.cost_nanos = usage, cost
        if error is not None and error.attempts:
            record.failed = error.attempts
            record.attempts = len(error.attempts)
            last: Attempt = error.attempts[-1]
            record.provider = record.provider or last.provider
            record.model = record.model or last.model
        if outcome is None:
            outcome = "client_disconnected" if isinstance(error, ClientGone) else "error" if error else "ok"
        record.outcome = outcome
        services = self.runtime.services
        if record.admitted:
            if services.telemetry.capture.enabled:
                sinks.capture(record, output, services.telemetry.capture.max_chars)
            if self._renewal is not None:
                self._renewal.cancel()
            self.runtime.gate.settle(self.held, cost, usage, record.model)
            if self.held.budgets:
                remaining = self.held.hold.remaining_after(cost)
                record.budget_remaining_usd = {kind: nanos / 1e9 for kind, nanos in remaining.items()}
            sinks.ledger(self.runtime.meter, record)
            online = services.agentops.online
            if online is not None:
                online.offer(self.runtime, record, output)
        try:
            sinks.metrics(services.telemetry.metrics, record, error)
            sinks.span(services.telemetry.tracing, record)
        except Exception:
            log.exception("telemetry for request %s failed", self.request.ctx.request_id)


def _response_model(data: Mapping[str, Any]) -> Any:
    """The model a provider says answered, wherever its API puts it in a whole answer or first event."""
    for holder in (data, data.get("message"), data.get("response")):
        if isinstance(holder, dict) and isinstance(holder.get("model"), str):
            return holder["model"]
    return None
