"""The usage event: one per admitted call, whatever happened to it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.metering.usage import Usage


@dataclass(slots=True)
class UsageEvent:
    """What the ledger keeps of one call. It names the key, never holds it."""

    ts: float  # unix seconds when the gateway received the call
    request_id: str
    key_name: str
    team: str
    agent: str
    operation: str  # chat | embeddings | responses | messages | tool_call
    requested_model: str  # a tool call's: the tool's gateway name (`github__create_issue`)
    model: str | None  # the gateway model that answered (or was last tried)
    provider: str | None
    status: int  # the HTTP status the client got
    outcome: str  # ok | error | client_disconnected
    usage: Usage
    cost_nanos: int
    latency_ms: float
    task: str | None = None
    session: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    route: str | None = None
    stream: bool = False
    error_type: str | None = None
    ttft_ms: float | None = None
    attempts: int = 1
    attempt_log: list[dict[str, Any]] = field(default_factory=list)  # the attempts that failed
    trace_id: str | None = None
    client_request_id: str | None = None  # the caller's own x-request-id, if it sent one
    agent_version: str | None = None  # the workflow version (X-Agent-Version, or the gateway's fingerprint)
    guardrails: list[Mapping[str, Any]] = field(default_factory=list)  # verdicts, never the matched text
    input_messages: str | None = None  # captured content (JSON), only when capture is on
    output_messages: str | None = None
    # a tool call's (MCP): the upstream server, the tool's own name there, the JSON bytes of its
    # arguments and of its result
    server: str | None = None
    tool: str | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
