"""The shipped dashboard and alert rules use metric names the gateway really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.telemetry.metrics import GENAI_LABELS, Metrics

ROOT = Path(__file__).resolve().parents[1]
NAME = re.compile(r"\b((?:agentgw|gen_ai)_[a-z_]+)\b")
LABELS = {*GENAI_LABELS, "gen_ai_token_type"}


def metric_names(expr: str) -> set[str]:
    return set(NAME.findall(expr)) - LABELS


def exported_names() -> set[str]:
    metrics = Metrics()
    metrics.watch_ledger(lambda: 0, lambda: 0)
    names = set()
    for family in text_string_to_metric_families(metrics.render().decode()):
        suffixes = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("_total",)}.get(family.type, ("",))
        names |= {family.name + s for s in suffixes}
    return names


def test_alert_rules_parse_and_use_real_metrics() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/agentgw-alerts.yml").read_text())
    alerts = {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}
    assert {
        "AgentgwCostSpike",
        "AgentgwHighErrorRate",
        "AgentgwSlowCalls",
        "AgentgwGuardrailSurge",
        "AgentgwBudgetNearCap",
        "AgentgwStateStoreFailing",
        "AgentgwSettlementsBacklog",
        "AgentgwSettlementsLost",
        "AgentgwLedgerDroppingEvents",
        "AgentgwLedgerSpooling",
        "AgentgwLedgerWriteFailures",
        "AgentgwSpansDropped",
        "AgentgwAgentAnomaly",
        "AgentgwOnlineEvalNotScoring",
    } <= set(alerts)
    exported = exported_names()
    for alert, expr in alerts.items():
        used = metric_names(expr)
        assert used and used <= exported, (alert, used - exported)


def test_dashboard_uses_real_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/agentgw-dashboard.json").read_text())
    exported = exported_names()
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 12
    for expr in exprs:
        used = metric_names(expr)
        assert used <= exported, (expr, used - exported)


def test_the_gateways_own_losses_are_exported() -> None:
    """Counters kept where the losses happen (the state store's failure policy and retry queue, the
    ledger, the span exporter) read at scrape time."""
    from policies.state import RetryQueue, StoreFailurePolicy, StoreUnavailable

    metrics = Metrics()
    failure, retries = StoreFailurePolicy("fail_closed"), RetryQueue()
    for _ in range(2):
        failure.admit_anyway(StoreUnavailable("down"))
    retries.deferred["budget"], retries.landed["budget"], retries.lost["tokens"] = 4, 3, 1
    metrics.watch_store(failure, retries)
    metrics.watch_ledger(lambda: 0, lambda: 5)
    metrics.watch_spans(lambda: {"queue_full": 6, "export_failed": 7})
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }
    assert samples[("agentgw_store_failures_total", (("outcome", "refused_closed"),))] == 2
    assert samples[("agentgw_store_failures_total", (("outcome", "admitted_open"),))] == 0
    assert samples[("agentgw_settlements_deferred_total", (("kind", "budget"),))] == 4
    assert samples[("agentgw_settlements_landed_late_total", (("kind", "budget"),))] == 3
    assert samples[("agentgw_settlements_lost_total", (("kind", "tokens"),))] == 1
    assert samples[("agentgw_settlements_pending", ())] == 0
    assert samples[("agentgw_ledger_events_dropped_total", ())] == 5
    assert samples[("agentgw_spans_dropped_total", (("reason", "export_failed"),))] == 7
