"""The canonical call, and the one record of what happened to it.

An endpoint adapter turns an HTTP request into a `CallRequest` (which API, who is calling, the body
in that API's shape, the model asked for). The pipeline fills a `CallRecord` as the call goes; when
the call ends, each sink (settlement, ledger, metrics, span) reads that record and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.apis.base import Api
from gateway.context import CallContext
from gateway.errors import Attempt
from gateway.metering.usage import Usage
from gateway.telemetry.otlp import SpanData
from policies.guardrails import Verdict


@dataclass(slots=True)
class CallRequest:
    """One call as the client made it. `headers` are the request headers the gateway may pass on or
    route by (lower-case names); `trace` the caller's W3C trace context, if any."""

    api: Api
    ctx: CallContext
    body: dict[str, Any]
    model: str
    trace: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    stream: bool = field(init=False)

    def __post_init__(self) -> None:
        self.stream = self.api.streams and self.body.get("stream") is True


@dataclass(slots=True)
class CallRecord:
    """Everything known about a call when it ends: what was asked, how it was routed and answered,
    what it used and cost, how it ended. `body` is what was forwarded (after input redaction)."""

    request: CallRequest
    body: dict[str, Any]
    span: SpanData | None = None
    admitted: bool = False
    # routing
    route: str | None = None
    strategy: str | None = None
    rule: str | None = None
    downgraded: bool = False
    skipped: list[str] = field(default_factory=list)  # "model:reason" for candidates left out
    # the answer
    provider: str | None = None  # the configured provider's name
    provider_kind: str | None = None  # openai | anthropic | mock
    model: str | None = None  # the gateway model that answered (or was last tried)
    server: tuple[str, int] | None = None
    translated: bool = False  # the provider was spoken to in another API than the client's
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    attempts: int = 0
    failed: tuple[Attempt, ...] = ()  # the upstream attempts that failed
    ttft_s: float | None = None
    agent_version: str | None = None  # the workflow version (gateway.agentops), set as the call starts
    # what it used
    usage: Usage | None = None
    cost_nanos: int = 0
    verdicts: list[Verdict] = field(default_factory=list)
    budget_remaining_usd: dict[str, float] = field(default_factory=dict)
    input_messages: str | None = None  # captured content (JSON), only when capture is on
    output_messages: str | None = None
    # how it ended
    status: int = 200  # what the client got (a stream that failed after it started got a 200)
    outcome: str = "ok"  # ok | error | client_disconnected
    error_type: str | None = None
    ended: float = 0.0

    ctx: CallContext = field(init=False)  # the request's, at hand: every sink reads them
    api: Api = field(init=False)
    stream: bool = field(init=False)

    def __post_init__(self) -> None:
        request = self.request
        self.ctx, self.api, self.stream = request.ctx, request.api, request.stream

    @property
    def duration_s(self) -> float:
        return (self.ended or time.perf_counter()) - self.ctx.started
