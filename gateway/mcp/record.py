"""The one record of an MCP tool call, and where it goes when the call ends: the ledger, the metrics,
the span (like a model call's `CallRecord` and its sinks)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.context import CallContext
from gateway.guards import records
from gateway.metering.events import UsageEvent
from gateway.metering.meter import Meter
from gateway.metering.usage import Usage
from gateway.telemetry import Metrics, Tracing, semconv
from gateway.telemetry.otlp import SpanData
from policies.guardrails import Verdict

OPERATION = "tool_call"  # the ledger's `operation` for tool calls


@dataclass(frozen=True, slots=True)
class Rpc:
    """The MCP request as the client sent it: its JSON-RPC id, the protocol revision, its session."""

    request_id: str | None = None
    protocol_version: str | None = None
    session_id: str | None = None


@dataclass(slots=True)
class ToolCallRecord:
    """Everything known about a tool call when it ends."""

    ctx: CallContext
    name: str  # the tool's gateway name, as the client called it (`github__create_issue`)
    rpc: Rpc = field(default_factory=Rpc)
    span: SpanData | None = None
    server: str | None = None  # the upstream server (when the name resolved to one)
    tool: str | None = None  # the tool's own name there
    address: tuple[str, int] | None = None
    transport: str | None = None  # tcp | pipe
    admitted: bool = False
    bytes_in: int | None = None
    bytes_out: int | None = None
    cost_nanos: int = 0
    verdicts: list[Verdict] = field(default_factory=list)
    budget_remaining_usd: dict[str, float] = field(default_factory=dict)
    arguments: str | None = None  # captured content (JSON), only when capture is on
    result: str | None = None
    status: int = 200  # the gateway error's status, else 200 (a tool's own error is a result)
    outcome: str = "ok"  # ok | error | client_disconnected | shutdown
    error_type: str | None = None  # the gateway's error code, or `tool_error` for a result with isError
    rpc_code: int | None = None  # the JSON-RPC error code the client got, if any
    ended: float = 0.0

    @property
    def duration_s(self) -> float:
        return (self.ended or time.perf_counter()) - self.ctx.started


def to_ledger(meter: Meter, record: ToolCallRecord) -> None:
    """The call's one usage event (an admitted call's)."""
    if not meter.recording:
        return
    ctx, span = record.ctx, record.span
    meter.record(
        UsageEvent(
            **ctx.attribution(),
            operation=OPERATION,
            requested_model=record.name,
            model=None,
            provider=None,
            status=record.status,
            outcome=record.outcome,
            error_type=record.error_type,
            usage=Usage(),
            cost_nanos=record.cost_nanos,
            latency_ms=record.duration_s * 1000,
            trace_id=f"{span.trace_id:032x}" if span is not None else None,
            input_messages=record.arguments,
            output_messages=record.result,
            guardrails=records(record.verdicts),
            server=record.server,
            tool=record.tool,
            bytes_in=record.bytes_in,
            bytes_out=record.bytes_out,
        )
    )


def to_metrics(metrics: Metrics | None, record: ToolCallRecord) -> None:
    if metrics is None:
        return
    metrics.child(metrics.requests, OPERATION, str(record.status), record.error_type or "ok").inc()
    metrics.observe_tool_call(
        server=record.server or "",
        tool=record.tool or "",
        outcome=record.outcome,
        code=record.error_type or "ok",
        error_type=record.error_type,
        duration_s=record.duration_s,
    )
    if record.cost_nanos:
        agent = metrics.bounded("agent", record.ctx.agent)
        metrics.child(metrics.cost, record.ctx.team, agent, f"mcp:{record.server}").inc(record.cost_nanos / 1e9)


def to_span(tracing: Tracing, record: ToolCallRecord) -> None:
    if record.span is not None:
        tracing.end(record.span, semconv.tool_call_attributes(record), record.error_type)
