"""Prometheus metrics at /metrics: the GenAI client histograms with the conventions' buckets, and
the gateway's own counters and gauges.

Names follow the OpenTelemetry-to-Prometheus mapping (`gen_ai.client.operation.duration` in
seconds becomes `gen_ai_client_operation_duration_seconds`). Label values that callers choose
(agents) are bounded: past `MAX_LABEL_VALUES` distinct values, new ones are counted as `_other`.
Task and session ids are never labels.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

from gateway.metering.usage import Usage

DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
MAX_LABEL_VALUES = 1000
OTHER = "_other"
GENAI_LABELS = (
    "gen_ai_operation_name",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "error_type",
)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.duration = Histogram(
            "gen_ai_client_operation_duration",
            "GenAI operation duration.",
            GENAI_LABELS,
            unit="seconds",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.tokens = Histogram(
            "gen_ai_client_token_usage",
            "Number of input and output tokens used.",
            (*GENAI_LABELS[:4], "gen_ai_token_type"),
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.ttfc = Histogram(
            "gen_ai_client_operation_time_to_first_chunk",
            "Time to receive the first chunk of a streamed response.",
            GENAI_LABELS[:4],
            unit="seconds",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "agentgw_requests",
            "Calls answered, by operation, HTTP status and error code.",
            ("operation", "status", "code"),
            registry=r,
        )
        self.cost = Counter("agentgw_cost_usd", "Metered cost in USD.", ("team", "agent", "model"), registry=r)
        self.guardrails = Counter(
            "agentgw_guardrail_triggers",
            "Guardrail verdicts that found something.",
            ("guardrail", "phase", "action"),
            registry=r,
        )
        self.rate_limited = Counter(
            "agentgw_rate_limit_rejections", "Calls refused by a rate limit.", ("limit",), registry=r
        )
        self.budget_rejected = Counter(
            "agentgw_budget_rejections", "Calls refused by a budget.", ("scope",), registry=r
        )
        self.upstream_errors = Counter(
            "agentgw_upstream_errors", "Failed upstream attempts.", ("provider", "model", "error"), registry=r
        )
        self.fallbacks = Counter(
            "agentgw_fallbacks", "Calls that moved on from a target to the next.", ("provider", "model"), registry=r
        )
        self.breaker = Gauge(
            "agentgw_breaker_state",
            "Circuit breaker per target: 0 closed, 1 half-open, 2 open.",
            ("provider", "model"),
            registry=r,
        )
        self.budget_remaining = Gauge(
            "agentgw_budget_remaining_usd", "Remaining budget for the period.", ("scope", "name"), registry=r
        )
        self.budget_cap = Gauge("agentgw_budget_cap_usd", "Budget cap for the period.", ("scope", "name"), registry=r)
        self.ledger_queue = Gauge("agentgw_ledger_queue_depth", "Usage events waiting to be written.", registry=r)
        self.in_flight = Gauge("agentgw_in_flight_requests", "Calls being served now.", registry=r)
        self._children: dict[tuple[Hashable, ...], Any] = {}
        self._seen: dict[str, set[str]] = {}

    def child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """`metric.labels(*labels)`, cached: prometheus_client locks and validates on every call."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def bounded(self, kind: str, value: str) -> str:
        """A label value from a caller-chosen set, or `_other` once the set is full."""
        seen = self._seen.setdefault(kind, set())
        if value in seen:
            return value
        if len(seen) >= MAX_LABEL_VALUES:
            return OTHER
        seen.add(value)
        return value

    def watch_ledger(self, depth: Callable[[], float]) -> None:
        self.ledger_queue.set_function(depth)

    def observe_call(
        self,
        *,
        operation: str,
        provider: str,
        request_model: str,
        response_model: str,
        error_type: str | None,
        duration_s: float,
        ttfc_s: float | None,
        usage: Usage | None,
    ) -> None:
        labels = (operation, provider, request_model, response_model)
        self.child(self.duration, *labels, error_type or "").observe(duration_s)
        if ttfc_s is not None:
            self.child(self.ttfc, *labels).observe(ttfc_s)
        if usage is not None:
            self.child(self.tokens, *labels, "input").observe(usage.input_tokens)
            self.child(self.tokens, *labels, "output").observe(usage.output_tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
