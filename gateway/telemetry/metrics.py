"""Prometheus metrics at /metrics: the GenAI client histograms with the conventions' buckets, and
the gateway's own counters and gauges.

Names follow the OpenTelemetry-to-Prometheus mapping (`gen_ai.client.operation.duration` in
seconds becomes `gen_ai_client_operation_duration_seconds`). Label values that callers choose
(agents) are bounded: past `MAX_LABEL_VALUES` distinct values, new ones are counted as `_other`.
Task and session ids are never labels.

The instruments are written for the gateway's one event loop: no locks, a bucket found by bisection,
cumulative counts computed only when scraped. (prometheus_client takes a lock for every bucket of
every observation; measured here, that was most of what metrics cost a request.) The text follows
the Prometheus exposition format 0.0.4; the tests parse it with prometheus_client's own parser.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gateway.metering.usage import Usage
from policies.slices import Slices
from policies.state import RetryQueue, StoreFailurePolicy

DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
MCP_DURATION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)  # the MCP conventions'
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MAX_LABEL_VALUES = 1000
OTHER = "_other"
GENAI_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model",
                "error_type")  # fmt: skip
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labels_names = tuple(labels)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def label_text(self, values: tuple[str, ...], extra: str = "") -> str:
        pairs = [f'{k}="{_escape(v)}"' for k, v in zip(self.labels_names, values, strict=True)]
        if extra:
            pairs.append(extra)
        return "{" + ",".join(pairs) + "}" if pairs else ""


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self.children: dict[tuple[str, ...], CounterChild] = {}

    def labels(self, *values: str) -> CounterChild:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = CounterChild()
        return child

    def render(self) -> list[str]:
        return [f"{self.name}_total{self.label_text(k)} {_number(c.value)}" for k, c in self.children.items()]


class CollectedCounter(_Metric):
    """A counter kept by someone else (the ledger, the span exporter, the state store's retries): its
    series are read from `sources` at scrape time, so the request path pays nothing for it."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self.sources: list[Callable[[], Mapping[tuple[str, ...], float]]] = []

    def collect(self, source: Callable[[], Mapping[tuple[str, ...], float]]) -> None:
        self.sources.append(source)

    def render(self) -> list[str]:
        values: dict[tuple[str, ...], float] = {}
        for source in self.sources:
            for labels, value in source().items():
                values[labels] = values.get(labels, 0.0) + value
        return [f"{self.name}_total{self.label_text(k)} {_number(v)}" for k, v in values.items()]


class GaugeChild:
    __slots__ = ("function", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.function: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def read(self) -> float:
        return self.function() if self.function is not None else self.value


class Gauge(_Metric):
    kind = "gauge"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self.children: dict[tuple[str, ...], GaugeChild] = {}
        self._single = None if labels else self.labels()

    def labels(self, *values: str) -> GaugeChild:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = GaugeChild()
        return child

    def _only(self) -> GaugeChild:
        if self._single is None:
            raise TypeError(f"{self.name} has labels: use .labels(...)")
        return self._single

    def set(self, value: float) -> None:
        self._only().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._only().dec(amount)

    def set_function(self, function: Callable[[], float]) -> None:
        self._only().function = function

    def render(self) -> list[str]:
        return [f"{self.name}{self.label_text(k)} {_number(c.read())}" for k, c in self.children.items()]


class HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str], buckets: Sequence[float]) -> None:
        super().__init__(name, help_text, labels)
        self.bounds = tuple(float(b) for b in buckets)
        self.le_labels = [f'le="{_number(b)}"' for b in self.bounds] + ['le="+Inf"']
        self.children: dict[tuple[str, ...], HistogramChild] = {}

    def labels(self, *values: str) -> HistogramChild:
        child = self.children.get(values)
        if child is None:
            child = self.children[values] = HistogramChild(self.bounds)
        return child

    def render(self) -> list[str]:
        lines = []
        for values, child in self.children.items():
            running = 0
            for le, count in zip(self.le_labels, child.counts, strict=True):
                running += count
                lines.append(f"{self.name}_bucket{self.label_text(values, le)} {running}")
            lines.append(f"{self.name}_sum{self.label_text(values)} {_number(child.sum)}")
            lines.append(f"{self.name}_count{self.label_text(values)} {running}")
        return lines


def _by_kind(counts: Mapping[str, int]) -> dict[tuple[str, ...], float]:
    return {(kind,): count for kind, count in list(counts.items())}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value)}.0"
    return repr(float(value))


class Metrics:
    def __init__(self) -> None:
        self.duration = Histogram(
            "gen_ai_client_operation_duration_seconds", "GenAI operation duration.", GENAI_LABELS, DURATION_BUCKETS
        )
        self.tokens = Histogram(
            "gen_ai_client_token_usage",
            "Number of input and output tokens used.",
            (*GENAI_LABELS[:4], "gen_ai_token_type"),
            TOKEN_BUCKETS,
        )
        self.ttfc = Histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time to receive the first chunk of a streamed response.",
            GENAI_LABELS[:4],
            DURATION_BUCKETS,
        )
        self.requests = Counter(
            "agentgw_requests",
            "Calls answered, by operation, HTTP status and error code.",
            ("operation", "status", "code"),
        )
        self.cost = Counter("agentgw_cost_usd", "Metered cost in USD.", ("team", "agent", "model"))
        self.guardrails = Counter(
            "agentgw_guardrail_triggers", "Guardrail verdicts that found something.", ("guardrail", "phase", "action")
        )
        self.rate_limited = Counter("agentgw_rate_limit_rejections", "Calls refused by a rate limit.", ("limit",))
        self.budget_rejected = Counter("agentgw_budget_rejections", "Calls refused by a budget.", ("scope",))
        self.upstream_errors = Counter(
            "agentgw_upstream_errors", "Failed upstream attempts.", ("provider", "model", "error")
        )
        self.fallbacks = Counter(
            "agentgw_fallbacks", "Calls that moved on from a target to the next.", ("provider", "model")
        )
        self.breaker = Gauge(
            "agentgw_breaker_state", "Circuit breaker per target: 0 closed, 1 half-open, 2 open.", ("provider", "model")
        )
        self.budget_remaining = Gauge(
            "agentgw_budget_remaining_usd", "Remaining budget for the period.", ("scope", "name")
        )
        self.budget_cap = Gauge("agentgw_budget_cap_usd", "Budget cap for the period.", ("scope", "name"))
        self.ledger_queue = Gauge("agentgw_ledger_queue_depth", "Usage events waiting to be written.")
        self.in_flight = Gauge("agentgw_in_flight_requests", "Calls being served now.")
        # What the gateway loses or defers itself, read at scrape time from where it is counted.
        self.store_failures = CollectedCounter(
            "agentgw_store_failures",
            "Calls that met an unreachable state store: served unmetered (fail_open) or refused (fail_closed).",
            ("outcome",),
        )
        self.settlements_deferred = CollectedCounter(
            "agentgw_settlements_deferred", "Settlements the state store could not take at once, queued.", ("kind",)
        )
        self.settlements_landed = CollectedCounter(
            "agentgw_settlements_landed_late", "Queued settlements that landed on a retry.", ("kind",)
        )
        self.settlements_lost = CollectedCounter(
            "agentgw_settlements_lost", "Settlements given up on (queue full, shutdown, token corrections).", ("kind",)
        )
        self.settlements_pending = Gauge("agentgw_settlements_pending", "Settlements waiting to be retried.")
        self.slices_drawn = CollectedCounter(
            "agentgw_state_slices_drawn", "Strict local slices drawn from the state store (Redis)."
        )
        self.sliced_calls = CollectedCounter(
            "agentgw_state_sliced_calls", "Calls admitted from a strict local slice, with no round trip to the store."
        )
        self.ledger_dropped = CollectedCounter("agentgw_ledger_events_dropped", "Usage events never written.")
        self.ledger_written = CollectedCounter("agentgw_ledger_events_written", "Usage events the database took.")
        self.ledger_failures = CollectedCounter(
            "agentgw_ledger_write_failures", "Ledger writes that failed or timed out (their events were spooled)."
        )
        self.ledger_spooled = Gauge(
            "agentgw_ledger_spool_events", "Usage events waiting in the local spool for the database to return."
        )
        self.tool_calls = Counter(
            "agentgw_tool_calls",
            "MCP tool calls, by upstream server, tool, outcome and error code.",
            ("server", "tool", "outcome", "code"),
        )
        self.tool_duration = Histogram(
            "agentgw_tool_call_duration_seconds",
            "MCP tool call duration as the gateway's client saw it.",
            ("server", "tool", "error_type"),
            MCP_DURATION_BUCKETS,
        )
        self.mcp_server_up = Gauge(
            "agentgw_mcp_server_up", "Upstream MCP server: 0 when its last request failed, else 1.", ("server",)
        )
        self.spans_dropped = CollectedCounter(
            "agentgw_spans_dropped", "Spans not exported: the queue was full or the export failed.", ("reason",)
        )
        # Agentops (gateway.agentops): versions, online evaluation, anomalies. No version labels: agents'
        # versions are many over time; the API and the ledger name them.
        self.agent_versions_new = Counter(
            "agentgw_agent_versions_new", "Workflow versions seen for the first time.", ("team", "agent")
        )
        self.online_eval_scores = Histogram(
            "agentgw_online_eval_score", "Judge scores of sampled production calls (0 to 1).", ("team", "agent"),
            SCORE_BUCKETS,
        )  # fmt: skip
        self.online_eval_samples = Counter(
            "agentgw_online_eval_samples",
            "Calls sampled for online evaluation, by outcome (scored, dropped, budget, failed).",
            ("outcome",),
        )
        self.anomaly_active = Gauge(
            "agentgw_agentops_anomaly", "1 while a series of the agent departs from its baseline.",
            ("team", "agent", "series"),
        )  # fmt: skip
        self.anomaly_zscore = Gauge(
            "agentgw_agentops_zscore", "The last interval's departure from the baseline, in standard deviations.",
            ("team", "agent", "series"),
        )  # fmt: skip
        self.anomalies = Counter(
            "agentgw_agentops_anomalies", "Anomalies raised (a series left its baseline).", ("team", "agent", "series")
        )
        self._metrics: list[Counter | CollectedCounter | Gauge | Histogram] = [
            self.duration, self.tokens, self.ttfc, self.requests, self.cost, self.guardrails, self.rate_limited,
            self.budget_rejected, self.upstream_errors, self.fallbacks, self.breaker, self.budget_remaining,
            self.budget_cap, self.ledger_queue, self.in_flight, self.store_failures, self.settlements_deferred,
            self.settlements_landed, self.settlements_lost, self.settlements_pending, self.slices_drawn,
            self.sliced_calls, self.ledger_dropped,
            self.ledger_written, self.ledger_failures, self.ledger_spooled, self.spans_dropped, self.tool_calls,
            self.tool_duration, self.mcp_server_up, self.agent_versions_new, self.online_eval_scores,
            self.online_eval_samples, self.anomaly_active, self.anomaly_zscore, self.anomalies,
        ]  # fmt: skip
        self._seen: dict[str, set[str]] = {}

    @staticmethod
    def child(metric: Counter | Gauge | Histogram, *labels: str) -> Any:
        """The labelled series of a metric (created on first use); kept for call sites' brevity."""
        return metric.labels(*labels)

    def bounded(self, kind: str, value: str) -> str:
        """A label value from a caller-chosen set, or `_other` once the set is full."""
        seen = self._seen.setdefault(kind, set())
        if value in seen:
            return value
        if len(seen) >= MAX_LABEL_VALUES:
            return OTHER
        seen.add(value)
        return value

    def watch_ledger(self, depth: Callable[[], float], dropped: Callable[[], float] | None = None) -> None:
        self.ledger_queue.set_function(depth)
        if dropped is not None:
            self.ledger_dropped.collect(lambda: {(): dropped()})

    def watch_ledger_writes(
        self, written: Callable[[], float], failures: Callable[[], float], spooled: Callable[[], float]
    ) -> None:
        """The ledger's writes: events taken, writes failed, events waiting in the spool."""
        self.ledger_written.collect(lambda: {(): written()})
        self.ledger_failures.collect(lambda: {(): failures()})
        self.ledger_spooled.set_function(spooled)

    def watch_store(self, failure: StoreFailurePolicy, retries: RetryQueue, slices: Slices | None = None) -> None:
        """The state store's failure decisions, the settlements waiting for it, and its slices."""
        self.store_failures.collect(
            lambda: {("admitted_open",): failure.admitted_open, ("refused_closed",): failure.refused_closed}
        )
        self.settlements_deferred.collect(lambda: _by_kind(retries.deferred))
        self.settlements_landed.collect(lambda: _by_kind(retries.landed))
        self.settlements_lost.collect(lambda: _by_kind(retries.lost))
        self.settlements_pending.set_function(lambda: retries.pending)
        if slices is not None:
            self.slices_drawn.collect(lambda: {(): slices.drawn})
            self.sliced_calls.collect(lambda: {(): slices.admitted})

    def watch_spans(self, dropped: Callable[[], Mapping[str, int]]) -> None:
        """Spans the exporter dropped, by reason."""
        self.spans_dropped.collect(lambda: _by_kind(dropped()))

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
        self.duration.labels(*labels, error_type or "").observe(duration_s)
        if ttfc_s is not None:
            self.ttfc.labels(*labels).observe(ttfc_s)
        if usage is not None:
            self.tokens.labels(*labels, "input").observe(usage.input_tokens)
            self.tokens.labels(*labels, "output").observe(usage.output_tokens)

    def observe_tool_call(
        self, *, server: str, tool: str, outcome: str, code: str, error_type: str | None, duration_s: float
    ) -> None:
        """One MCP tool call: `tool` is bounded like agent names (upstream servers name their tools)."""
        if tool and self.bounded("tool", f"{server}/{tool}") == OTHER:
            tool = OTHER
        self.tool_calls.labels(server, tool, outcome, code).inc()
        self.tool_duration.labels(server, tool, error_type or "").observe(duration_s)

    def update_mcp_servers(self, up: Mapping[str, bool]) -> None:
        """The upstream MCP servers' state at scrape time (servers no longer configured are dropped)."""
        self.mcp_server_up.children = {(name,): self.mcp_server_up.children.get((name,)) or GaugeChild() for name in up}
        for name, is_up in up.items():
            self.mcp_server_up.labels(name).set(1.0 if is_up else 0.0)

    def update_breakers(self, targets: Sequence[dict[str, Any]]) -> None:
        """Breaker states at scrape time, from the router's description of its models' targets
        (`provider`, `model`: the gateway's model name, as every other metric labels it)."""
        for target in targets:
            state = BREAKER_STATES.get(str(target.get("breaker")), 0)
            self.breaker.labels(str(target["provider"]), str(target["model"])).set(state)

    fleet: Any = None  # a gateway.telemetry.worker_metrics.WorkerMetrics under `agentgw serve --workers N`

    def families(self) -> list[tuple[str, list[str], list[str]]]:
        """Each metric's name, header lines and sample lines."""
        return [(metric.name, metric.header(), metric.render()) for metric in self._metrics]

    def render(self) -> bytes:
        if self.fleet is not None:
            rendered: bytes = self.fleet.render(self.families())
            return rendered
        lines: list[str] = []
        for _, header, samples in self.families():
            lines += header
            lines += samples
        return ("\n".join(lines) + "\n").encode()
