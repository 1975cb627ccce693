"""Versions and anomaly series read model calls: an agent's MCP tool calls (no workflow version, their own
latencies) make no `null` version in `/v1/agents` and do not move its latency series; they count in
its cost per task and error rate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gateway.agentops import insights
from gateway.agentops.config import AnomaliesConfig
from gateway.agentops.watch import AnomalyWatcher
from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger
from gateway.metering.report import UsageQuery
from gateway.metering.usage import Usage

T0 = 1_800_000_000 // 300 * 300


def event(i: int, **fields: Any) -> UsageEvent:
    base: dict[str, Any] = dict(
        ts=T0 + i, request_id=f"r{i}", key_name="k", team="research", agent="crawler", operation="chat",
        requested_model="m", model="m", provider="p", status=200, outcome="ok", usage=Usage(10, 2),
        cost_nanos=1000, latency_ms=100.0, task=f"t{i % 3}", agent_version="v1",
    )  # fmt: skip
    return UsageEvent(**{**base, **fields})


def test_tool_calls_make_no_version_and_no_latency(tmp_path: Path) -> None:
    async def run() -> tuple[list[dict[str, Any]], Any]:
        ledger = Ledger(tmp_path / "ledger.db")
        await ledger.start()
        for i in range(6):
            ledger.record(event(i))
            ledger.record(event(100 + i, request_id=f"tool{i}", operation="tool_call", requested_model="gh__issue",
                                model=None, provider=None, agent_version=None, server="gh", tool="issue",
                                latency_ms=5000.0, cost_nanos=500, outcome="error" if i == 0 else "ok"))  # fmt: skip
        await ledger.flush()
        rows = await insights.versions(ledger, UsageQuery((), T0, T0 + 300))
        tallies = await AnomalyWatcher(AnomaliesConfig(), ledger, None, None)._tallies(T0, T0 + 300)  # type: ignore[arg-type]
        await ledger.close()
        return rows, tallies[float(T0)]

    rows, tallies = asyncio.run(run())
    assert [(r["version"], r["calls"], r["cost_usd"]) for r in rows] == [("v1", 6, 0.000006)]
    model, tools = tallies[("research", "crawler", "v1")], tallies[("research", "crawler", "")]
    assert model.latency_sum / model.answered == 100.0 and tools.answered == 0
    assert (tools.calls, tools.errors, tools.task_nanos) == (6, 1, 3000)  # in the agent's errors and cost per task
