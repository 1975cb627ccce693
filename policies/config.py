"""Config models for the sections policies own: `state:`, `budget_alerts:`, and the limits and budgets
that teams and keys declare.

The root config composes them: `state: StateConfig`, `budget_alerts: BudgetAlertsConfig | None`, and
TeamConfig / KeyConfig inherit the fields of `TeamPolicies` / `KeyPolicies`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from policies.state.urls import parse_state_url

NANOS_PER_USD = 10**9

Period = Literal["day", "week", "month", "total"]
OnStoreError = Literal["fail_open", "fail_closed"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _thresholds(values: list[float] | None) -> list[float] | None:
    if values is None:
        return None
    for value in values:
        if not 0 < value <= 1:
            raise ValueError("alert thresholds are fractions of the cap, in (0, 1]")
    return sorted(set(values))


class SlicesConfig(_Strict):
    """Strict local slices of a shared store (`policies/slices.py`): a replica draws up to `max_calls`
    calls' worth of a busy call shape's limits and budgets at once and admits those calls in memory."""

    enabled: bool = True
    max_calls: int = Field(default=64, ge=2, le=4096, description="The most calls one slice admits.")
    max_age_ms: int = Field(
        default=250, ge=1, le=60_000, description="A slice admits no call after this; it goes back once its calls end."
    )


class StateConfig(_Strict):
    """Where rate-limit windows, budget counters, reservations and leases live.

    `state: memory` (one process) or `state: redis://host:6379/0` are short for `{url: ...}`. Other URL
    forms: `rediss://` (TLS), `redis+cluster://h1:p1,h2:p2`, `redis+sentinel://h1:p1,h2:p2/service`.
    """

    url: str = "memory"
    on_store_error: OnStoreError = Field(
        default="fail_closed",
        description="When the store is unreachable: fail_closed answers 503, fail_open serves unmetered calls.",
    )
    connect_timeout_ms: int = Field(default=250, ge=1, le=60_000)
    timeout_ms: int = Field(default=500, ge=1, le=60_000, description="Socket read/write timeout per command.")
    fail_fast_ms: int = Field(
        default=1000, ge=0, le=600_000, description="After a connection failure, fail at once for this long."
    )
    max_connections: int = Field(default=256, ge=1, le=100_000)
    key_prefix: str = Field(default="agentgw:", max_length=64, pattern=r"^[A-Za-z0-9_.:-]*$")
    reservation_ttl_seconds: float = Field(
        default=900.0,
        gt=0,
        description="Budget reservations and concurrency leases older than this are dropped as leaked; "
        "set it above the longest call (streams included).",
    )
    slices: SlicesConfig = Field(
        default_factory=SlicesConfig,
        description="On a shared store (Redis): admit busy call shapes from strict local slices.",
    )
    shutdown_retry_seconds: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="At shutdown, how long settlements the store has not taken yet are retried (the store "
        "stalled or down) before they are counted as lost; keep it within the orchestrator's grace.",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"url": data}
        return data

    @field_validator("url")
    @classmethod
    def _url_form(cls, url: str) -> str:
        parse_state_url(url)  # raises ValueError naming the accepted forms
        return url

    def secrets(self) -> list[str]:
        """The password in the URL, if any, for scrubbing logs and errors."""
        password = parse_state_url(self.url).password
        return [password] if password else []


class ModelLimitsConfig(_Strict):
    """Limits on one model within a team or key."""

    rpm: PositiveInt | None = Field(default=None, description="Requests per minute.")
    tpm: PositiveInt | None = Field(default=None, description="Tokens (input + output) per minute.")
    concurrent: PositiveInt | None = Field(default=None, description="Requests in flight at once.")


class LimitsConfig(ModelLimitsConfig):
    """Rate limits of a scope; `per_model` adds limits on calls to one model within the same scope."""

    per_model: dict[str, ModelLimitsConfig] = Field(default_factory=dict)


class BudgetConfig(_Strict):
    """A spending cap in USD over a calendar period (UTC; weeks start on Monday) or in total."""

    usd: Decimal = Field(ge=0, max_digits=18, decimal_places=9)
    period: Period
    alert_thresholds: list[float] | None = Field(
        default=None, description="Fractions of the cap that fire an alert; default: budget_alerts.thresholds."
    )

    @field_validator("alert_thresholds")
    @classmethod
    def _check_thresholds(cls, values: list[float] | None) -> list[float] | None:
        return _thresholds(values)

    @property
    def cap_nanos(self) -> int:
        """The cap in integer nano-dollars."""
        return int((self.usd * NANOS_PER_USD).to_integral_value(rounding=ROUND_HALF_EVEN))


class BudgetAlertsConfig(_Strict):
    """Soft-threshold alerts: a JSON POST to `url` once per budget, period and threshold."""

    url: str | None = Field(default=None, pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    thresholds: list[float] = Field(default_factory=lambda: [0.8, 0.95])

    @field_validator("thresholds")
    @classmethod
    def _check_thresholds(cls, values: list[float]) -> list[float]:
        return _thresholds(values) or []

    def secrets(self) -> list[str]:
        """Header values (often bearer tokens), for scrubbing logs."""
        return [value for value in self.headers.values() if value]


class KeyPolicies(_Strict):
    """Limit and budget fields of a key (TeamConfig and KeyConfig inherit them)."""

    limits: LimitsConfig | None = None
    budget: BudgetConfig | None = None
    task_budget: BudgetConfig | None = Field(default=None, description="A cap for each X-Task-Id value separately.")


class TeamPolicies(KeyPolicies):
    """Limit and budget fields of a team: a key's fields plus caps that apply to each agent separately."""

    agent_limits: LimitsConfig | None = Field(default=None, description="Limits for each agent separately.")
    agent_budget: BudgetConfig | None = Field(default=None, description="A cap for each agent separately.")
