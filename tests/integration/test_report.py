"""`agentgw report` over a gateway's ledger: cost per team, agent and task, top movers against the
window before, error and latency SLOs, guardrail triggers per day, versions introduced with their
numbers and eval results, anomalies; in Markdown and in HTML."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.metering.events import UsageEvent
from gateway.metering.ledger import Ledger
from gateway.metering.usage import Usage
from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, base_config
from tests.standin import StandIn

PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}


def older_traffic(path: Path, ts: float) -> None:
    """The window before: `old-bot` spent $0.50 and `crawler` $0.000001; neither in the window itself."""

    async def write() -> None:
        ledger = Ledger(path)
        await ledger.start()
        for i, (agent, nanos) in enumerate([("old-bot", 500_000_000), ("crawler", 1000)]):
            ledger.record(UsageEvent(
                ts=ts + i, request_id=f"old-{i}", key_name="k", team="research", agent=agent, operation="chat",
                requested_model="oa-gpt-x", model="oa-gpt-x", provider="standin-openai", status=200, outcome="ok",
                usage=Usage(10, 2), cost_nanos=nanos, latency_ms=5.0,
            ))  # fmt: skip
        await ledger.close()

    asyncio.run(write())


def test_the_report_for_people(
    standin: StandIn, gateway_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = tmp_path / "ledger.db"
    older_traffic(ledger, time.time() - 1.5 * 3600)
    config = base_config(standin)
    for name in ("oa-gpt-x", "oa-fail-500"):
        config["models"][name].update(PRICE)
    config["ledger"] = {"path": str(ledger)}
    config["guardrails"] = {"pii": {"type": "pii", "action": "redact"}}
    config["teams"]["research"] = {"guardrails": ["pii"]}
    gateway = gateway_factory(config)
    agent, admin = gateway.http(AGENT_KEY), gateway.http(ADMIN_KEY)
    ask = {"model": "oa-gpt-x", "messages": [{"role": "system", "content": "You crawl."},
                                             {"role": "user", "content": "Fetch it."}]}  # fmt: skip
    version = ""
    for task in ("T-1", "T-1", "T-2"):
        version = agent.post("/v1/chat/completions", json=ask, headers={"x-task-id": task}).headers[
            "x-agentgw-agent-version"
        ]
    agent.post("/v1/chat/completions", json={**ask, "messages": [{"role": "user", "content": "mail a@b.example"}]})
    assert agent.post("/v1/chat/completions", json={**ask, "model": "oa-fail-500"}).status_code == 502
    admin.post("/v1/chat/completions", json={**ask, "messages": [{"role": "user", "content": "Status?"}]})
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"input": "Fetch it.", "expected": "Fetch"}\n')
    system = str(_write(tmp_path / "s", "You crawl."))
    assert main(["eval", "run", str(cases), "--model", "oa-gpt-x", "--system", system,
                 "--url", gateway.url, "--api-key", AGENT_KEY]) == 0  # fmt: skip
    capsys.readouterr()
    assert admin.get("/v1/agents").status_code == 200  # the ledger is written
    with sqlite3.connect(ledger) as db:  # an anomaly the watcher recorded (its own tests raise real ones)
        db.execute(
            "INSERT INTO anomalies (ts, team, agent, agent_version, series, window_start, window_end, value, "
            "baseline, stddev, z) VALUES (?, 'research', 'crawler', '*', 'cost_per_task', ?, ?, 0.04, 0.02, 0.001, 20)",
            (time.time(), time.time() - 600, time.time() - 300),
        )

    assert main(["report", "--since", "1h", "-c", str(gateway.config_path), "--slo-error-rate", "0.1"]) == 0
    text = capsys.readouterr().out
    sections = {part.split("\n", 1)[0]: part for part in text.split("\n## ")[1:]}
    assert list(sections) == ["Cost per team", "Cost per agent", "Most expensive tasks", "Top movers",
                              "Error and latency SLOs", "Guardrail triggers per day", "Versions introduced",
                              "Anomalies"]  # fmt: skip
    assert "| research |" in sections["Cost per team"] and "| ops |" in sections["Cost per team"]
    assert "| research | crawler | T-1 | 2 |" in sections["Most expensive tasks"]
    movers = sections["Top movers"]
    assert "| research | old-bot | $0.500000 | $0.000000 | -100% |" in movers and "| ops | admin |" in movers
    assert movers.index("old-bot") < movers.index("| crawler |")  # the biggest change first
    slo = {
        line.split(" | ")[1]: line for line in sections["Error and latency SLOs"].splitlines() if line.startswith("| ")
    }
    assert "| 6 | 16.67% | **missed** |" in slo["crawler"] and "| 0.00% | met |" in slo["admin"]
    assert "| day | pii |" in sections["Guardrail triggers per day"]
    assert f"| {time.strftime('%Y-%m-%d', time.gmtime())} | 1 |" in sections["Guardrail triggers per day"]
    introduced = sections["Versions introduced"]
    line = next(row for row in introduced.splitlines() if f"| {version} |" in row)
    assert (
        "| crawler |" in line and "| fingerprint | oa-gpt-x | - | 3 | 0.00% |" in line and "| 100% (passed) |" in line
    )
    assert "| oa-fail-500 | - | 1 | 100.00% |" in introduced
    assert "| research | crawler | * | cost_per_task | 0.04 | 0.02 | 20.0 |" in sections["Anomalies"]

    out = tmp_path / "report.html"
    assert main(["report", "--since", "1h", "--format", "html", "-o", str(out), "--ledger", str(ledger)]) == 0
    page = out.read_text()
    tags = Tags()
    tags.feed(page)
    assert tags.open == [] and tags.counts["table"] == 8 and "<strong>missed</strong>" in page
    assert main(["report", "--since", "soon", "--ledger", str(ledger)]) == 1
    assert "--since" in capsys.readouterr().err
    assert main(["report", "--ledger", str(tmp_path / "none.db")]) == 1


class Tags(HTMLParser):
    """Counts elements and checks that every one opened is closed."""

    VOID = {"meta", "br"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.counts: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open)
        self.open.pop()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
