"""The console's questions of the ledger, asked directly: sessions whose id two teams both used, and
an agent's figures added up from its events and the report together."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.metering import insights
from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger
from gateway.metering.report import UsageQuery
from gateway.metering.usage import Usage

# (team, agent, task, session, outcome, cost in nano-dollars, latency ms)
CALLS = [
    ("red", "scout", "T-1", "shared", "ok", 1_000_000, 100.0),
    ("red", "scout", "T-1", "shared", "error", 1_000_000, 300.0),
    ("red", "scout", None, "solo", "ok", 2_000_000, 200.0),
    ("blue", "scout", "T-1", "shared", "ok", 5_000_000, 50.0),
]


def ledger_with_calls(path: Path, now: float) -> Ledger:
    async def write() -> None:
        ledger = Ledger(path)
        await ledger.start()
        for i, (team, agent, task, session, outcome, cost, latency) in enumerate(CALLS):
            ledger.record(UsageEvent(
                ts=now - 100 + i, request_id=f"req_{i:032x}", key_name=f"{team}-key", team=team, agent=agent,
                task=task, session=session, operation="chat", requested_model="m", model="m", provider="mock",
                status=200 if outcome == "ok" else 502, outcome=outcome, usage=Usage(10, 5), cost_nanos=cost,
                latency_ms=latency,
            ))  # fmt: skip
        await ledger.close()

    asyncio.run(write())
    return Ledger(path)


async def asked(path: Path, question: str, now: float, limit: int = 50, **filters: str) -> list[dict[str, Any]]:
    ledger = Ledger(path)
    await ledger.start()
    try:
        query = UsageQuery((), now - 3600, now + 1, tuple(filters.items()))
        if question == "sessions":
            return await insights.sessions(ledger, query, limit=limit)
        return await insights.agents(ledger, query)
    finally:
        await ledger.close()


def test_a_session_id_two_teams_used_is_two_sessions(tmp_path: Path) -> None:
    now = time.time()
    ledger_with_calls(tmp_path / "ledger.db", now)
    found = asyncio.run(asked(tmp_path / "ledger.db", "sessions", now))
    assert [(r["session"], r["team"], r["calls"]) for r in found] == [
        ("shared", "blue", 1),
        ("solo", "red", 1),
        ("shared", "red", 2),
    ]
    newest = asyncio.run(asked(tmp_path / "ledger.db", "sessions", now, limit=2))
    assert [(r["session"], r["team"]) for r in newest] == [("shared", "blue"), ("solo", "red")]  # not red's "shared"
    red = asyncio.run(asked(tmp_path / "ledger.db", "sessions", now, team="red"))
    assert [(r["session"], r["team"], r["calls"], r["errors"]) for r in red] == [
        ("solo", "red", 1, 0),
        ("shared", "red", 2, 1),
    ]


def test_an_agents_figures_per_team(tmp_path: Path) -> None:
    now = time.time()
    ledger_with_calls(tmp_path / "ledger.db", now)
    rows = {r["team"]: r for r in asyncio.run(asked(tmp_path / "ledger.db", "agents", now))}
    red, blue = rows["red"], rows["blue"]
    assert (red["requests"], red["errors"], red["tasks"], red["sessions"]) == (3, 1, 1, 2)
    assert red["cost_usd"] == pytest.approx(0.004) and red["cost_per_task_usd"] == pytest.approx(0.002)
    assert red["latency_p50_ms"] == 100.0 and red["latency_p95_ms"] == 200.0  # answered calls only
    assert red["first_seen"] < red["last_seen"] and red["models"] == [{"model": "m", "requests": 3, "cost_usd": 0.004}]
    assert (blue["requests"], blue["sessions"], blue["cost_per_task_usd"]) == (1, 1, pytest.approx(0.005))
    assert list(rows) == ["blue", "red"]  # most expensive first
