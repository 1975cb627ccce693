"""Where a finished call goes: each sink reads the call's record and nothing else.

    capture    the call's messages for spans, replay and feedback (only when configured)
    ledger     one usage event per admitted call
    metrics    the request counters, GenAI histograms and cost
    span       the call span, with the GenAI attributes

Settlement of limits and budgets is the gate's (`gateway.admission.Gate.settle`).
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.errors import BudgetExceeded, GatewayError, RateLimited
from gateway.guards import records
from gateway.metering.events import UsageEvent
from gateway.metering.meter import Meter
from gateway.metering.usage import Usage
from gateway.pipeline.call import CallRecord
from gateway.telemetry import Metrics, Tracing, semconv
from gateway.translate.base import TranslationError
from gateway.translate.chain import OVER_CHAT

log = logging.getLogger("agentgw.calls")


def capture(record: CallRecord, output: Any, max_chars: int) -> None:
    """The call's input and output messages in the conventions' JSON shape, after the redacting
    guardrails (best effort: a capture that fails is logged, the call is not)."""
    try:
        record.input_messages = semconv.input_messages(as_chat(record), max_chars)
        if isinstance(output, str):
            reason = record.finish_reasons[-1] if record.finish_reasons else None
            choices = [{"message": {"content": output}, "finish_reason": reason}]
            record.output_messages = semconv.output_messages(choices, max_chars)
        elif isinstance(output, dict) and record.api.name == "chat":
            record.output_messages = semconv.output_messages(output.get("choices") or [], max_chars)
        elif isinstance(output, dict) and record.api.name != "embeddings":
            reason = record.finish_reasons[-1] if record.finish_reasons else None
            choices = [{"message": {"content": record.api.output_text(output)}, "finish_reason": reason}]
            record.output_messages = semconv.output_messages(choices, max_chars)
    except Exception:
        log.exception("content capture for request %s failed", record.ctx.request_id)


def as_chat(record: CallRecord) -> dict[str, Any]:
    """The request's messages in chat's shape, which the conventions' capture format follows."""
    api = record.api.name
    if api in ("chat", "embeddings"):
        return record.body
    over_chat = OVER_CHAT.get(api)
    if over_chat is None:
        return {}
    try:
        return over_chat().request(record.body, record.request.model)
    except TranslationError:
        return {}


def ledger(meter: Meter, record: CallRecord) -> None:
    """The call's one usage event (an admitted call's)."""
    if not meter.recording:
        return
    ctx, span = record.ctx, record.span
    meter.record(
        UsageEvent(
            **ctx.attribution(),
            operation=record.api.name,
            requested_model=record.request.model,
            route=record.route,
            model=record.model,
            provider=record.provider,
            stream=record.stream,
            status=record.status,
            outcome=record.outcome,
            error_type=record.error_type,
            usage=record.usage or Usage(),
            cost_nanos=record.cost_nanos,
            latency_ms=record.duration_s * 1000,
            ttft_ms=None if record.ttft_s is None else record.ttft_s * 1000,
            attempts=record.attempts,
            attempt_log=[a.as_dict() for a in record.failed],
            trace_id=f"{span.trace_id:032x}" if span is not None else None,
            input_messages=record.input_messages,
            output_messages=record.output_messages,
            guardrails=records(record.verdicts),
            agent_version=record.agent_version,
        )
    )


def metrics(metrics: Metrics | None, record: CallRecord, error: GatewayError | None) -> None:
    """Request counters, refusals, and for an admitted call the GenAI histograms and its cost."""
    if metrics is None:
        return
    metrics.in_flight.dec()
    api = record.api.name
    code = record.error_type or ("client_disconnected" if record.outcome == "client_disconnected" else "ok")
    metrics.child(metrics.requests, api, str(record.status), code).inc()
    if isinstance(error, RateLimited):
        metrics.child(metrics.rate_limited, error.limit).inc()
    elif isinstance(error, BudgetExceeded):
        metrics.child(metrics.budget_rejected, error.scope).inc()
    if not record.admitted:
        return
    provider = semconv.provider_name(record.provider_kind) or record.provider or ""
    metrics.observe_call(
        operation=record.api.operation,
        provider=provider,
        request_model=record.request.model,
        response_model=record.response_model or record.model or "",
        error_type=record.error_type,
        duration_s=record.duration_s,
        ttfc_s=record.ttft_s if record.stream else None,
        usage=record.usage,
    )
    if record.cost_nanos:
        agent = metrics.bounded("agent", record.ctx.agent)
        metrics.child(metrics.cost, record.ctx.team, agent, record.model or "").inc(record.cost_nanos / 1e9)


def span(tracing: Tracing, record: CallRecord) -> None:
    if record.span is not None:
        tracing.end(record.span, semconv.call_attributes(record), record.error_type)
