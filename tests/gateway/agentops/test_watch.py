"""The anomaly watcher over a real ledger (SQLite and PostgreSQL), the defaults (5-minute intervals),
synthetic traffic written at chosen times: baselines learned from the ledger's history at start; an
agent whose cost per task doubles is flagged when its second doubled interval is read, once (webhook,
ledger row, metric) even with two replicas watching; an agent with steady traffic raises nothing."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.agentops.alerts import Alerts
from gateway.agentops.config import AlertsConfig, AnomaliesConfig
from gateway.agentops.watch import AnomalyWatcher
from gateway.metering.config import LedgerConfig
from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger, open_ledger
from gateway.metering.usage import Usage
from gateway.telemetry import Metrics
from gateway.upstream.factory import create_client
from tests.webhook_receiver import WebhookReceiver

STEP = AnomaliesConfig().interval_seconds
START = 1_800_000_000 // STEP * STEP  # the first interval of history
HISTORY = 14  # intervals before the watcher starts: more than the warm-up needs
TASKS = 25  # per agent and interval


def traffic(ledger: Ledger, interval: int, rng: random.Random, *, doubled: bool = False) -> None:
    """One interval of two agents: each task one call (two when `doubled`, for `crawler` only)."""
    start = START + interval * STEP
    for agent in ("crawler", "steady"):
        calls = 2 if doubled and agent == "crawler" else 1
        for task in range(TASKS):
            for call in range(calls):
                ts = start + (task * calls + call) * STEP / (TASKS * 2 + 1)
                ledger.record(UsageEvent(
                    ts=ts, request_id=f"{agent}-{interval}-{task}-{call}", key_name="k", team="research", agent=agent,
                    operation="chat", requested_model="m", model="m", provider="p", status=200, outcome="ok",
                    usage=Usage(100, 20), cost_nanos=int(20_000 * rng.gauss(1, 0.05)),
                    latency_ms=800 * rng.gauss(1, 0.1), task=f"{agent}-{interval}-{task}", agent_version="fp-1",
                ))  # fmt: skip


async def scenario(make_ledger: Any) -> dict[str, Any]:
    rng = random.Random(11)
    ledger = make_ledger()
    await ledger.start()
    client = create_client("aiohttp", max_connections=4)
    metrics = Metrics()
    found: dict[str, Any] = {}
    with WebhookReceiver() as hooks:
        alerts = Alerts(AlertsConfig(url=hooks.url), client)
        for i in range(HISTORY):
            traffic(ledger, i, rng)
        await ledger.flush()
        now = START + HISTORY * STEP
        replicas = [AnomalyWatcher(AnomaliesConfig(), ledger, alerts, metrics, clock=lambda: now) for _ in range(2)]
        for watcher in replicas:
            await watcher.warm_up(now)  # learns the 14 intervals of history
        raised: list[list[Any]] = []
        for i, doubled in [(HISTORY, False), (HISTORY + 1, True), (HISTORY + 2, True)]:
            traffic(ledger, i, rng, doubled=doubled)
            await ledger.flush()
            raised.append([await watcher.step() for watcher in replicas])
        await alerts.drain()
        found["posts"] = hooks.wait_for(lambda posts: len(posts) >= 1, timeout=2)
    found["raised"] = [[[(a.agent, a.version, a.series) for a in r] for r in step] for step in raised]
    found["first"] = raised[2][0][0] if raised[2][0] else None
    rows = await ledger.query("SELECT agent, agent_version, series, window_start, window_end FROM anomalies")
    found["rows"] = [tuple(r) for r in rows]
    found["metrics"] = {
        (s.name, s.labels.get("agent"), s.labels.get("series")): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
        if "agentops" in s.name
    }
    await client.aclose()
    await ledger.close()
    return found


def check(found: dict[str, Any]) -> None:
    assert found["raised"] == [
        [[], []],  # steady
        [[], []],  # the first doubled interval: one departing point is not yet an alert
        [[("crawler", "*", "cost_per_task")], []],  # the second: flagged, by one replica only
    ]
    first = found["first"]
    assert first.window_start == START + (HISTORY + 1) * STEP  # where the departure began
    assert first.value == pytest.approx(2 * first.baseline, rel=0.15)
    assert [(p["type"], p["agent"], p["series"], p["version"]) for p in found["posts"]] == [
        ("anomaly", "crawler", "cost_per_task", "*")
    ]
    assert found["rows"] == [
        ("crawler", "*", "cost_per_task", START + (HISTORY + 1) * STEP, START + (HISTORY + 3) * STEP)
    ]
    metrics = found["metrics"]
    assert metrics[("agentgw_agentops_anomaly", "crawler", "cost_per_task")] == 1
    assert metrics[("agentgw_agentops_anomalies_total", "crawler", "cost_per_task")] == 1
    assert metrics.get(("agentgw_agentops_anomaly", "steady", "cost_per_task"), 0) == 0
    assert metrics[("agentgw_agentops_zscore", "crawler", "cost_per_task")] > 3
    assert abs(metrics[("agentgw_agentops_zscore", "steady", "cost_per_task")]) < 3


def test_on_sqlite(tmp_path: Path) -> None:
    check(asyncio.run(scenario(lambda: Ledger(tmp_path / "ledger.db"))))


def test_on_postgresql(postgres_dsn: str, tmp_path: Path) -> None:
    config = LedgerConfig.model_validate({"url": postgres_dsn, "spool_dir": str(tmp_path / "spool")})
    check(asyncio.run(scenario(lambda: open_ledger(config))))


def test_a_version_alerts_on_its_own_when_its_agent_runs_several(tmp_path: Path) -> None:
    """Half of an agent's tasks on version A, half on B; B's cost per task doubles: B is flagged, and
    the agent (its cost per task up by half); A is not."""

    async def run() -> list[tuple[str, str, str]]:
        rng = random.Random(2)
        ledger = Ledger(tmp_path / "ledger.db")
        await ledger.start()
        client = create_client("aiohttp", max_connections=4)

        def interval(i: int, doubled: bool) -> None:
            for task in range(2 * TASKS):
                version = "fp-b" if task % 2 else "fp-a"
                calls = 2 if doubled and version == "fp-b" else 1
                for call in range(calls):
                    ledger.record(UsageEvent(
                        ts=START + i * STEP + task, request_id=f"{i}-{task}-{call}", key_name="k", team="research",
                        agent="crawler", operation="chat", requested_model="m", model="m", provider="p",
                        status=200, outcome="ok", usage=Usage(100, 20), cost_nanos=int(20_000 * rng.gauss(1, 0.05)),
                        latency_ms=800.0, task=f"{i}-{task}", agent_version=version,
                    ))  # fmt: skip

        for i in range(HISTORY):
            interval(i, False)
        await ledger.flush()
        watcher = AnomalyWatcher(AnomaliesConfig(), ledger, Alerts(AlertsConfig(), client), None)
        await watcher.warm_up(START + HISTORY * STEP)
        raised = []
        for i in (HISTORY, HISTORY + 1):
            interval(i, True)
            await ledger.flush()
            raised += [(a.agent, a.version, a.series) for a in await watcher.step()]
        await client.aclose()
        await ledger.close()
        return raised

    assert sorted(asyncio.run(run())) == [("crawler", "*", "cost_per_task"), ("crawler", "fp-b", "cost_per_task")]
