"""Synthetic drift in live traffic: two agents call the gateway steadily, then one starts making two
calls per task (its cost per task doubles). The gateway's own anomaly watcher (1-second intervals
here) posts the alert within three intervals plus the settle time of the change (the README's
promise), shows it on /metrics and in the ledger; the steady agent's cost and errors raise nothing."""

from __future__ import annotations

import itertools
import sqlite3
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway_harness import AGENT_KEY, base_config
from tests.standin import StandIn
from tests.webhook_receiver import WebhookReceiver

STEADY_KEY = "agentgw-test-steady-key"
INTERVAL, SETTLE = 1, 0.3


def config(standin: StandIn, hooks: WebhookReceiver) -> dict[str, Any]:
    config = base_config(standin)
    config["models"]["oa-gpt-x"].update({"input_per_mtok": 1.0, "output_per_mtok": 2.0})
    config["keys"].append({"name": "steady", "key": STEADY_KEY, "team": "research", "agent": "steady"})
    config["agentops"] = {
        "alerts": {"url": hooks.url},
        "anomalies": {"interval_seconds": INTERVAL, "settle_seconds": SETTLE, "warmup_intervals": 3,
                      "min_calls": 3, "consecutive": 2},
    }  # fmt: skip
    return config


def run_tasks(clients: dict[str, httpx.Client], until: float, calls_per_task: dict[str, int], ids: Any) -> None:
    body = {"model": "oa-gpt-x", "messages": [{"role": "user", "content": "Plan the next step."}]}
    while time.time() < until:
        for agent, client in clients.items():
            task = f"{agent}-{next(ids)}"
            for _ in range(calls_per_task[agent]):
                response = client.post("/v1/chat/completions", json=body, headers={"x-task-id": task})
                assert response.status_code == 200, response.text
        time.sleep(0.02)


def test_a_cost_per_task_doubling_in_live_traffic_is_flagged_in_time(standin: StandIn, gateway_factory: Any) -> None:
    with WebhookReceiver() as hooks:
        gateway = gateway_factory(config(standin, hooks))
        clients = {"crawler": gateway.http(AGENT_KEY), "steady": gateway.http(STEADY_KEY)}
        ids = itertools.count()
        run_tasks(clients, time.time() + 5 * INTERVAL, {"crawler": 1, "steady": 1}, ids)
        # steady traffic, baselines learned: nothing on cost or errors (the stand-in's latency, a millisecond
        # or two, moves by half between 1-second intervals of a busy machine; steady latency is tested in
        # tests/gateway/agentops/test_anomaly.py with realistic noise)
        assert [p for p in hooks.posts if p.get("series") in ("cost_per_task", "error_rate")] == []
        drift = time.time()
        run_tasks(clients, drift + 3 * INTERVAL + SETTLE + 0.5, {"crawler": 2, "steady": 1}, ids)
        posts = hooks.wait_for(lambda p: any(x.get("series") == "cost_per_task" for x in p), timeout=3)
        flagged = [p for p in posts if p.get("series") == "cost_per_task"]
        text = httpx.get(gateway.url + "/metrics").text

    assert [(p["agent"], p["version"]) for p in flagged] == [("crawler", "*")]
    alert = flagged[0]
    assert alert["window_end"] + SETTLE <= drift + 3 * INTERVAL + SETTLE + 0.2  # the promised window
    assert alert["window_start"] >= int(drift) - INTERVAL and alert["value"] > 1.6 * alert["baseline"]
    active = {
        (s.labels["agent"], s.labels["series"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "agentgw_agentops_anomaly"
    }
    assert active[("crawler", "cost_per_task")] == 1
    assert active.get(("steady", "cost_per_task"), 0) == 0
    with sqlite3.connect(gateway.ledger_path) as db:
        rows = db.execute("SELECT agent, series FROM anomalies WHERE series = 'cost_per_task'").fetchall()
    assert rows == [("crawler", "cost_per_task")]
