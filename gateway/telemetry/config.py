"""Config for the `telemetry:` section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TracingConfig(_Strict):
    """Off by default. The exporter runs on its own thread: a collector that is down costs dropped
    spans, never a slower or failed request."""

    enabled: bool = False
    exporter: Literal["otlp_http", "otlp_grpc", "console"] = "otlp_http"
    endpoint: str | None = Field(
        default=None, description="Default: http://127.0.0.1:4318/v1/traces (HTTP) or 127.0.0.1:4317 (gRPC)."
    )
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0)
    batch_delay_ms: int = Field(default=2000, ge=10, description="Spans are exported in batches this often.")
    sample_ratio: float = Field(default=1.0, ge=0, le=1, description="Parent-based: a sampled caller wins.")
    service_name: str = "agentgw"
    resource_attributes: dict[str, str] = Field(default_factory=dict)


class MetricsConfig(_Strict):
    """`GET /metrics` shows every team's spend, budget caps and remaining budget, agent names, models
    and error counts. Without `token` anyone who can reach the gateway's port can read it; with one,
    a scrape must send `Authorization: Bearer <token>` (Prometheus: `authorization: {credentials: ...}`)."""

    enabled: bool = True
    token: SecretStr | None = Field(
        default=None, min_length=16, description="Bearer token /metrics requires; may be ${ENV_VAR}."
    )


class ContentCaptureConfig(_Strict):
    """Message content on spans and in the ledger (for session replay and feedback export), taken
    after the redacting guardrails have run. Off by default."""

    enabled: bool = False
    max_chars: int = Field(default=16384, ge=256, description="Per direction; longer content is truncated.")


class TelemetryConfig(_Strict):
    tracing: TracingConfig = TracingConfig()
    metrics: MetricsConfig = MetricsConfig()
    capture_content: ContentCaptureConfig = ContentCaptureConfig()
