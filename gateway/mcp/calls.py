"""One MCP tool call through the gateway, from the client's `tools/call` to its end:

    resolve    `<server>__<tool>` to a configured server; the access rules of the config in force
               for this caller (not for the session: every call is judged anew); the tool must be
               one the server lists
    guard      tool_access on the name, the text guardrails on the arguments (block, redact, flag)
    check      the arguments against the tool's input schema
    admit      the caller's request and concurrency limits; the tool's price held on its budgets
    forward    to the upstream server, within its timeout, as a child span of the call's
    guard      the result: the output guardrails, prompt injection in tool output
    finish     once, however it ended: settlement, one ledger event (admitted calls), metrics, span

A refusal or failure leaves as an `MCPError` (`gateway.mcp.errors`); a tool's own error (a result
with `isError`) is a result, passed on, and recorded as outcome `error`, `tool_error`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import orjson
from mcp import Client
from mcp_types import CallToolResult, RequestParamsMeta

from gateway.admission import Held
from gateway.context import CallContext
from gateway.errors import (
    BudgetExceeded,
    ClientGone,
    GatewayError,
    RateLimited,
    ServiceUnavailable,
    ToolNotFound,
    UpstreamTimedOut,
    internal_error,
)
from gateway.guards import blocked
from gateway.mcp import names
from gateway.mcp.arguments import check_arguments
from gateway.mcp.errors import mcp_error, rpc_code
from gateway.mcp.record import Rpc, ToolCallRecord, to_ledger, to_metrics, to_span
from gateway.mcp.upstream import Upstream
from gateway.shutdown import MESSAGE as SHUTDOWN_MESSAGE
from gateway.telemetry import semconv
from gateway.telemetry.otlp import SpanData
from policies.guardrails import Verdict

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger("agentgw.mcp")

SPAN_KIND_INTERNAL = 1
RESERVED_META = "io.modelcontextprotocol/"  # an upstream's own protocol stamps stay with it


async def call_tool(
    runtime: Runtime,
    ctx: CallContext,
    name: str,
    arguments: Mapping[str, Any] | None,
    rpc: Rpc,
    trace: Mapping[str, str],
) -> dict[str, Any]:
    """Run one tool call; its result in MCP's wire shape, or the `MCPError` that refused or failed it."""
    return await ToolCall(runtime, ctx, name, dict(arguments or {}), rpc, trace).run()


class ToolCall:
    def __init__(
        self,
        runtime: Runtime,
        ctx: CallContext,
        name: str,
        arguments: dict[str, Any],
        rpc: Rpc,
        trace: Mapping[str, str],
    ) -> None:
        self.runtime = runtime
        self.arguments = arguments
        telemetry = runtime.services.telemetry
        span = telemetry.tracing.start_call(semconv.tool_span_name(name), trace)
        if span is not None:
            span.kind = SPAN_KIND_INTERNAL
        self.record = ToolCallRecord(ctx, name, rpc, span)
        self.held = Held()
        self._finished = False
        if telemetry.metrics is not None:
            telemetry.metrics.in_flight.inc()

    async def run(self) -> dict[str, Any]:
        shutdown = self.runtime.services.shutdown
        untrack = shutdown.track(asyncio.current_task())
        try:
            result, cost = await self._run()
        except asyncio.CancelledError:
            if not shutdown.was_cut():
                self.finish(ClientGone("The client went away before the tool call finished."))
                raise
            cut = ServiceUnavailable(SHUTDOWN_MESSAGE, retry_after=1)
            self.finish(cut, outcome="shutdown", cost=self._charged)
            raise mcp_error(cut) from None
        except GatewayError as refused:
            self.finish(refused, cost=self._charged)
            raise mcp_error(refused) from None
        except Exception:
            log.exception("tool call %s (request %s) failed", self.record.name, self.record.ctx.request_id)
            bug = internal_error()
            self.finish(bug, cost=self._charged)
            raise mcp_error(bug) from None
        finally:
            untrack()
        self.finish(None, cost=cost)
        return result

    _charged = 0  # the price, once the upstream has done the work (or may have: a timeout)

    async def _run(self) -> tuple[dict[str, Any], int]:
        upstream, tool = self._resolve()
        schema = await upstream.tool(tool)
        if schema is None:
            raise self._not_found()
        self.record.tool = tool  # only a tool the server has: callers choose names, metrics label by them
        arguments = await self._guard_arguments()
        check_arguments(schema.input_schema, arguments)
        price = upstream.config.cost_nanos(tool)
        ctx = self.record.ctx
        self.held = await self.runtime.gate.admit_tool(ctx, price)
        self.record.admitted = True
        result = await self._forward(upstream, tool, arguments, price)
        data = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        _drop_reserved_meta(data)
        self.record.bytes_out = len(orjson.dumps(data))
        data = await self._guard_result(data)
        if result.is_error:
            self.record.error_type, self.record.outcome = "tool_error", "error"
        self._capture(arguments, data)
        return data, price

    def _resolve(self) -> tuple[Upstream, str]:
        """The server and the tool's own name there; a 404 for a name that is not a tool of a
        configured server this caller may use (the same answer either way)."""
        record, ctx = self.record, self.record.ctx
        split = names.split(record.name)
        mcp = self.runtime.mcp
        upstream = mcp.upstreams.get(split[0]) if split is not None else None
        if split is None or upstream is None:
            raise self._not_found()
        record.server = upstream.name
        if not mcp.allows(ctx.team, ctx.key_name, ctx.agent, record.name):
            raise self._not_found()
        record.transport = upstream.network_transport
        record.address = getattr(upstream.config, "address", None)
        self.record.bytes_in = len(orjson.dumps(self.arguments))
        return upstream, split[1]

    def _not_found(self) -> ToolNotFound:
        return ToolNotFound(f"Tool '{self.record.name}' is not available to this key.", param="name")

    async def _guard_arguments(self) -> dict[str, Any]:
        guard = self.runtime.guards.for_principal(self.record.ctx.principal)
        if guard is None or not guard.has_tool_call_guards:
            return self.arguments
        result = await guard.scan_tool_call(self.record.name, self.arguments)
        self._verdicts(result.verdicts)
        if result.blocked_by is not None:
            raise blocked(result.blocked_by, "input")
        body = cast(dict[str, Any], result.body)
        return cast(dict[str, Any], body["arguments"])

    async def _guard_result(self, data: dict[str, Any]) -> dict[str, Any]:
        guard = self.runtime.guards.for_principal(self.record.ctx.principal)
        if guard is None or not guard.has_tool_result_guards:
            return data
        result = await guard.scan_tool_result(data)
        self._verdicts(result.verdicts)
        if result.blocked_by is not None:
            raise blocked(result.blocked_by, "output")
        return cast(dict[str, Any], result.body)

    def _verdicts(self, verdicts: tuple[Verdict, ...]) -> None:
        self.record.verdicts += verdicts
        metrics = self.runtime.services.telemetry.metrics
        if metrics is not None:
            for v in verdicts:
                if v.count:
                    metrics.child(metrics.guardrails, v.guardrail, v.phase, v.action).inc()

    async def _forward(self, upstream: Upstream, tool: str, arguments: dict[str, Any], price: int) -> CallToolResult:
        """The call to the upstream server, as a child span whose context the server receives."""
        record = self.record
        tracing = self.runtime.services.telemetry.tracing
        attempt: SpanData | None = None
        meta: dict[str, Any] = {}
        if record.span is not None:
            attrs = semconv.tool_upstream_attributes(upstream.name, tool, record.address, upstream.network_transport)
            attempt = tracing.start_attempt(record.span, f"tools/call {tool}", attrs)
            meta = tracing.traceparent(attempt)

        async def send(client: Client) -> CallToolResult:
            return await client.call_tool(tool, arguments, meta=cast(RequestParamsMeta, meta) if meta else None)

        error_type: str | None = None
        try:
            result = await upstream.request(send, f"tools/call {tool}")
        except UpstreamTimedOut as exc:
            self._charged = price  # it was sent: the server may have done (and billed) the work
            error_type = exc.code
            raise
        except GatewayError as exc:
            error_type = exc.code
            raise
        finally:
            if attempt is not None:
                tracing.end(attempt, semconv.error_attributes(error_type) if error_type else {}, error_type)
        self._charged = price
        if result.is_error and attempt is not None:
            attempt.attributes.update(semconv.error_attributes("tool_error"))
        return result

    def _capture(self, arguments: dict[str, Any], result: dict[str, Any]) -> None:
        capture = self.runtime.services.telemetry.capture
        if capture.enabled:
            self.record.arguments = _captured(arguments, capture.max_chars)
            self.record.result = _captured(result, capture.max_chars)

    def finish(self, error: GatewayError | None, *, outcome: str | None = None, cost: int = 0) -> None:
        """End the call once: its record completed, then settlement and the ledger (an admitted call),
        metrics and the span. Telemetry failing must not cost the settlement: it comes last."""
        if self._finished:
            return
        self._finished = True
        record = self.record
        record.ended = time.perf_counter()
        record.cost_nanos = cost
        if error is not None:
            record.status, record.error_type, record.rpc_code = error.status, error.code, rpc_code(error)
            record.outcome = outcome or ("client_disconnected" if isinstance(error, ClientGone) else "error")
        services = self.runtime.services
        if record.admitted:
            self.runtime.gate.settle(self.held, cost, None)
            if self.held.budgets:
                remaining = self.held.hold.remaining_after(cost)
                record.budget_remaining_usd = {kind: nanos / 1e9 for kind, nanos in remaining.items()}
            to_ledger(self.runtime.meter, record)
        try:
            metrics = services.telemetry.metrics
            if metrics is not None:
                metrics.in_flight.dec()
                if isinstance(error, RateLimited):
                    metrics.child(metrics.rate_limited, error.limit).inc()
                elif isinstance(error, BudgetExceeded):
                    metrics.child(metrics.budget_rejected, error.scope).inc()
            to_metrics(metrics, record)
            to_span(services.telemetry.tracing, record)
        except Exception:
            log.exception("telemetry for tool call %s failed", record.ctx.request_id)


def _drop_reserved_meta(data: dict[str, Any]) -> None:
    """The upstream server's own protocol stamps (its `serverInfo`...) are not the gateway's to pass on."""
    meta = data.get("_meta")
    if isinstance(meta, dict):
        kept = {k: v for k, v in meta.items() if not k.startswith(RESERVED_META)}
        if kept:
            data["_meta"] = kept
        else:
            data.pop("_meta")


def _captured(value: Any, max_chars: int) -> str:
    """`value` as JSON for spans and replay, at most `max_chars`: a longer one becomes a JSON string
    holding its beginning, marked as cut."""
    text = orjson.dumps(value).decode()
    if len(text) <= max_chars:
        return text
    return orjson.dumps(text[: max(0, max_chars - 32)] + semconv.TRUNCATED).decode()
