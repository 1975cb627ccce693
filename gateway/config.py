"""The root of `config.yaml`: it composes each package's own section models and checks references."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.agent_names import name_problems
from gateway.agentops.config import AgentOpsConfig
from gateway.auth import KeyConfig
from gateway.console.config import ConsoleConfig
from gateway.exposure import dev_key_problems
from gateway.mcp.config import McpConfig
from gateway.metering.config import LedgerConfig
from gateway.providers.config import ProviderConfig
from gateway.telemetry.config import TelemetryConfig
from policies.config import BudgetAlertsConfig, StateConfig, TeamPolicies
from policies.guardrails import GuardrailConfig
from routing.config import ModelConfig, RouteConfig, RoutingConfig, check_references

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,127}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    upstream_client: Literal["httptools", "aiohttp", "httpx", "httpx-aiohttp"] = Field(
        default="httptools",
        description="HTTP client for providers: the gateway's own HTTP/1.1 client on httptools (0.3 to 0.4 of "
        "aiohttp's CPU per call, bench/upstream_bench.py), aiohttp, or httpx.",
    )
    max_upstream_connections: int = Field(default=1000, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = False
    graceful_shutdown_seconds: float = Field(
        default=300.0,
        ge=0,
        description="How long a SIGTERM waits for calls in flight (agent streams run for minutes); calls still "
        "running near the end are cut with an error in their API's shape. 0: no wait.",
    )
    allow_dev_key_on_network: bool = Field(
        default=False, description="Serve the published development key on a non-loopback host anyway."
    )
    # The bounds of the HTTP edge (gateway/serving): what a connection may cost before it has sent a
    # whole request. None of them touches a response: streams and slow upstream calls run as long as
    # they need.
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Request line plus headers, in bytes; more is answered 431 and the connection closed. "
        "64 KiB: what Envoy and AWS load balancers allow, far above what SDKs send.",
    )
    max_headers: int = Field(
        default=100, ge=8, description="Header fields per request; more is answered 431 (Envoy's default)."
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Time from a connection's first byte (or its request's first byte) to the end of the "
        "headers; a request still incomplete then is answered 408 and the connection closed (slowloris).",
    )
    body_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Longest silence between two reads of a request body (nginx's client_body_timeout); "
        "then 408 and close. Time the gateway itself is not reading does not count.",
    )
    keep_alive_seconds: int = Field(
        default=75,
        ge=1,
        description="An idle keep-alive connection is closed after this many seconds. Longer than the "
        "SDKs' own idle expiry (5-15 s) and load balancers' (60 s), so the client side closes first and "
        "never reuses a connection the gateway is closing.",
    )
    max_connections: int = Field(
        default=1000,
        gt=0,
        description="Open client connections, idle ones included; a connection beyond them gets 503 "
        "(retry-after: 1) to its first request and is closed. Matches max_upstream_connections.",
    )


class TeamConfig(TeamPolicies):
    """A team: its rate limits and budgets (see `policies.config.TeamPolicies`) and guardrails."""

    description: str | None = None
    guardrails: list[str] = Field(default_factory=list, description="Names from the `guardrails:` section.")


class Config(_Strict):
    server: ServerConfig = ServerConfig()
    ledger: LedgerConfig = LedgerConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    providers: dict[str, ProviderConfig] = Field(min_length=1)
    models: dict[str, ModelConfig] = Field(min_length=1)
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    routing: RoutingConfig = RoutingConfig()
    state: StateConfig = StateConfig()
    budget_alerts: BudgetAlertsConfig | None = None
    guardrails: dict[str, GuardrailConfig] = Field(default_factory=dict)
    teams: dict[str, TeamConfig] = Field(default_factory=dict)
    keys: list[KeyConfig] = Field(min_length=1)
    console: ConsoleConfig = ConsoleConfig()
    agentops: AgentOpsConfig = AgentOpsConfig()
    mcp: McpConfig = McpConfig()

    @model_validator(mode="after")
    def _references_resolve(self) -> Config:
        problems: list[str] = []
        for section, names in (
            ("providers", self.providers),
            ("models", self.models),
            ("routes", self.routes),
        ):
            bad = [n for n in names if not _NAME.match(n)]
            problems += [f"{section}.{n}: a name may hold only letters, digits and _.:/@-" for n in bad]
        for name, model in self.models.items():
            if model.provider not in self.providers:
                problems.append(f"models.{name}.provider: unknown provider '{model.provider}'")
        problems += [
            f"routes.{name}: a route may not share its name with a model" for name in self.routes if name in self.models
        ]
        problems += check_references(self.models, self.routes, self.routing)
        for section, holders in (("teams", self.teams.items()), ("keys", enumerate(self.keys))):
            for holder, item in holders:
                for j, guardrail in enumerate(item.guardrails):
                    if guardrail not in self.guardrails:
                        problems.append(f"{section}.{holder}.guardrails.{j}: unknown guardrail '{guardrail}'")
        for section, owners in (("teams", self.teams.items()), ("keys", enumerate(self.keys))):
            for owner, policies in owners:
                for field_name in ("limits", "agent_limits"):
                    limits = getattr(policies, field_name, None)
                    for model in limits.per_model if limits is not None else {}:
                        if model not in self.models:
                            problems.append(f"{section}.{owner}.{field_name}.per_model.{model}: unknown model")
        seen_names: set[str] = set()
        seen_digests: set[str] = set()
        for i, key in enumerate(self.keys):
            if key.name in seen_names:
                problems.append(f"keys.{i}.name: '{key.name}' is used by another key")
            if key.key_sha256 in seen_digests:
                problems.append(f"keys.{i}: the same key is declared twice")
            seen_names.add(key.name)
            seen_digests.add(key.key_sha256)
            if key.team not in self.teams:
                problems.append(f"keys.{i}.team: unknown team '{key.team}' (declare it under teams:)")
            for j, allowed in enumerate(key.models):
                if allowed != "*" and allowed not in self.models and allowed not in self.routes:
                    problems.append(f"keys.{i}.models.{j}: unknown model or route '{allowed}'")
        problems += name_problems(self.keys)
        key_models = {key.name: frozenset(key.models) for key in self.keys}
        problems += self.agentops.problems(key_models, {*self.models, *self.routes})
        problems += self.mcp.problems(self.teams, (key.name for key in self.keys))
        if not self.server.allow_dev_key_on_network:
            problems += dev_key_problems(self.keys, self.server.host, "server.host")
        if problems:
            raise ValueError("\n".join(problems))  # one line each; config_file lists them apart
        return self

    def secrets(self) -> list[str]:
        """Every provider secret in this config, longest first, for scrubbing error text."""
        values = {s for provider in self.providers.values() for s in provider.secrets()}
        values |= set(self.state.secrets())
        values |= set(self.ledger.secrets())
        values |= set(self.console.secrets())
        values |= set(self.agentops.secrets())
        values |= set(self.mcp.secrets())
        if self.budget_alerts is not None:
            values |= set(self.budget_alerts.secrets())
        values |= {v for g in self.guardrails.values() for v in getattr(g, "headers", {}).values() if len(v) >= 4}
        if self.telemetry.metrics.token is not None:
            values.add(self.telemetry.metrics.token.get_secret_value())
        return sorted(values, key=len, reverse=True)
