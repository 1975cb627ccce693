"""A small fleet with known numbers, written into a ledger before the gateway starts, for the
console's tests: every figure the pages show can be checked against these events."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger
from gateway.metering.usage import Usage

ADMIN_KEY = "console-test-admin-key"
LEAD_KEY = "console-test-lead-key"  # team_admin of research
CRAWLER_KEY = "console-test-crawler-key"  # agent key, pinned to agent crawler
SECRET = "console-test-session-secret-0123456789abcdef"

# (agent, key name, team, task, session, operation, cost in nano-dollars, outcome, latency ms)
CALLS = [
    ("crawler", "crawler-key", "research", "T-1", "sess-crawl", "chat", 1_000_000, "ok", 100.0),
    ("crawler", "crawler-key", "research", "T-1", "sess-crawl", "responses", 1_000_000, "ok", 200.0),
    ("crawler", "crawler-key", "research", "T-1", "sess-crawl", "chat", 1_000_000, "error", 300.0),
    ("crawler", "crawler-key", "research", "T-1", "sess-crawl", "chat", 1_000_000, "ok", 400.0),
    ("planner", "planner-key", "research", "T-2", "sess-plan", "messages", 2_000_000, "ok", 500.0),
    ("planner", "planner-key", "research", "T-2", "sess-plan", "messages", 2_000_000, "ok", 600.0),
    ("planner", "planner-key", "research", "T-2", "sess-plan", "messages", 2_000_000, "ok", 700.0),
    ("ops-bot", "ops-key", "ops", "T-9", "sess-ops", "embeddings", 5_000_000, "ok", 50.0),
    ("ops-bot", "ops-key", "ops", "T-9", "sess-ops", "embeddings", 5_000_000, "ok", 60.0),
]
TOTALS = {"admin": (9, 0.020), "lead": (7, 0.010), "crawler": (4, 0.004)}  # calls, USD
MESSAGES = orjson.dumps([{"role": "user", "parts": [{"type": "text", "content": "find <b>it</b>"}]}]).decode()
PII = {"guardrail": "pii", "phase": "input", "action": "redact", "entities": ["email"], "count": 2}


def config() -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": 0},
        "providers": {"mock": {"type": "mock"}},
        "models": {"mock-chat": {"provider": "mock"}},
        "teams": {"research": {"budget": {"usd": 1, "period": "month"}}, "ops": {}},
        "keys": [
            {"name": "admin", "key": ADMIN_KEY, "team": "ops", "role": "admin"},
            {"name": "research-lead", "key": LEAD_KEY, "team": "research", "role": "team_admin"},
            {"name": "crawler-key", "key": CRAWLER_KEY, "team": "research", "agent": "crawler"},
        ],
        "console": {"session_secret": SECRET},
    }


def events(now: float) -> list[UsageEvent]:
    day_start = now - now % 86400
    first = max(day_start + 1, now - 600)  # all today (UTC), so "today" and "this month" agree
    out = []
    for i, (agent, key, team, task, session, operation, cost, outcome, latency) in enumerate(CALLS):
        captured = i == 0
        out.append(UsageEvent(
            ts=first + i, request_id=f"req_{i:032x}", key_name=key, team=team, agent=agent, task=task,
            session=session, operation=operation, requested_model="mock-chat", model="mock-chat", provider="mock",
            status=200 if outcome == "ok" else 502, outcome=outcome,
            error_type=None if outcome == "ok" else "upstream_error", usage=Usage(100, 20), cost_nanos=cost,
            latency_ms=latency, ttft_ms=latency / 2, guardrails=[PII] if i == 1 else [],
            input_messages=MESSAGES if captured else None,
            agent_version=("crawl-v1" if i < 2 else "crawl-v2") if agent == "crawler" else None,
        ))  # fmt: skip
    return out


def write(path: Path, now: float | None = None) -> None:
    async def run() -> None:
        ledger = Ledger(path)
        await ledger.start()
        for event in events(time.time() if now is None else now):
            ledger.record(event)
        await ledger.close()

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = threading.Thread(target=asyncio.run, args=(run(),))  # Playwright's sync API holds this thread's loop
    writer.start()
    writer.join()
