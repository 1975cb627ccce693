"""Every worker's series on one /metrics, labelled by worker, that sum to the fleet's."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gateway.telemetry.metrics import Metrics
from gateway.telemetry.worker_metrics import WorkerMetrics


def test_each_workers_series_once_and_shared_gauges_once(tmp_path: Path) -> None:
    workers = [Metrics(), Metrics()]
    for n, metrics in enumerate(workers):
        metrics.requests.labels("chat", "200", 'ok"}x').inc(3 + n)  # a label value with quote and brace
        metrics.duration.labels("chat", "p", "m", "m", "").observe(0.05 * (n + 1))
        metrics.budget_cap.labels("team", "research").set(10)
        metrics.fleet = WorkerMetrics(tmp_path, n)
    workers[1].fleet.publish(workers[1].families())
    text = workers[0].render().decode()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    requests = {s.labels["worker"]: s.value for s in samples if s.name == "agentgw_requests_total"}
    assert requests == {"0": 3, "1": 4}
    assert {s.labels["code"] for s in samples if s.name == "agentgw_requests_total"} == {'ok"}x'}
    counts = [s.value for s in samples if s.name == "gen_ai_client_operation_duration_seconds_count"]
    assert sum(counts) == 2
    caps = [s for s in samples if s.name == "agentgw_budget_cap_usd"]
    assert len(caps) == 1 and "worker" not in caps[0].labels
