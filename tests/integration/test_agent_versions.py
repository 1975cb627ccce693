"""Workflow versions end to end: each call's version (the gateway's fingerprint, or the agent's own
X-Agent-Version) on the answer, the ledger, the span, the replay and the usage report; a version seen
for the first time announced once (log, metric, webhook), across a restart on the same ledger too."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

import anthropic
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.telemetry.tracing import MemorySink
from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, base_config
from tests.standin import StandIn
from tests.webhook_receiver import WebhookReceiver

GUARDED_KEY = "agentgw-test-guarded-key"


def config(standin: StandIn, hooks: WebhookReceiver) -> dict[str, Any]:
    config = base_config(standin)
    config["guardrails"] = {"pii": {"type": "pii", "action": "redact"}}
    config["keys"].append({"name": "guarded", "key": GUARDED_KEY, "team": "research", "agent": "crawler",
                           "guardrails": ["pii"]})  # fmt: skip
    config["agentops"] = {"alerts": {"url": hooks.url}, "versions": {"variables": ["(?s)<user>.*?</user>"]}}
    config["telemetry"] = {"tracing": {"batch_delay_ms": 10}}
    return config


def ask(http: httpx.Client, system: str, *, headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:
    body = {
        "model": "oa-gpt-x",
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": "Where next?"}],
        **extra,
    }
    response = http.post("/v1/chat/completions", json=body, headers={"x-session-id": "trip-1", **(headers or {})})
    assert response.status_code == 200, response.text
    return response


PROMPT = "You plan trips. Today is {day}. <user>{user}</user> Be brief."


def test_each_call_carries_its_version(standin: StandIn, gateway_factory: Any) -> None:
    spans = MemorySink()
    with WebhookReceiver() as hooks:
        gateway = gateway_factory(config(standin, hooks), span_sink=spans)
        http = gateway.http(AGENT_KEY)
        first = ask(http, PROMPT.format(day="2026-12-05", user="Ana")).headers["x-agentgw-agent-version"]
        same = ask(http, PROMPT.format(day="2027-03-01", user="Bo")).headers["x-agentgw-agent-version"]
        changed = ask(http, PROMPT.format(day="2026-12-05", user="Ana").replace("brief", "thorough"))
        tooled = ask(
            http,
            PROMPT.format(day="2026-12-05", user="Ana"),
            tools=[{"type": "function", "function": {"name": "book", "parameters": {"type": "object"}}}],
        )
        named = ask(http, "Anything at all.", headers={"x-agent-version": "release-7"})
        guarded = ask(gateway.http(GUARDED_KEY), PROMPT.format(day="2026-12-05", user="Ana"))
        versions = [first, same, *(r.headers["x-agentgw-agent-version"] for r in (changed, tooled, named, guarded))]
        assert first == same and first.startswith("fp-")
        assert versions[4] == "release-7"
        assert len(set(versions)) == 5  # the prompt, the tools and the guardrails in force each make a version

        report = gateway.http().get("/v1/usage", params={"group_by": "agent,agent_version"}).json()
        calls = {row["agent_version"]: row["requests"] for row in report["data"]}
        assert calls == {first: 2, versions[2]: 1, versions[3]: 1, "release-7": 1, versions[5]: 1}
        only = gateway.http().get("/v1/usage", params={"agent_version": first}).json()["totals"]
        assert only["requests"] == 2

        replay = gateway.http().get("/v1/sessions/trip-1").json()["calls"]
        assert [c["agent_version"] for c in replay] == versions
        deadline = time.monotonic() + 5
        while (
            len([s for s in spans.spans if "agentgw.attempt" not in s.attributes]) < 6 and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        call_spans = sorted((s for s in spans.spans if "agentgw.attempt" not in s.attributes), key=lambda s: s.start_ns)
        assert [s.attributes["gen_ai.agent.version"] for s in call_spans] == versions
        with sqlite3.connect(gateway.ledger_path) as db:
            stored = [row[0] for row in db.execute("SELECT agent_version FROM usage_events ORDER BY ts")]
        assert stored == versions


def test_a_version_is_announced_once_across_a_restart(
    standin: StandIn, gateway_factory: Any, caplog: pytest.LogCaptureFixture, tmp_path: Any
) -> None:
    caplog.set_level(logging.INFO, logger="agentgw.agentops")
    with WebhookReceiver() as hooks:
        settings = config(standin, hooks)
        settings["ledger"] = {"path": str(tmp_path / "shared.db")}
        gateway = gateway_factory(settings)
        for user in ("Ana", "Bo", "Cy"):
            ask(gateway.http(AGENT_KEY), PROMPT.format(day="2026-12-05", user=user))
        ask(gateway.http(AGENT_KEY), "Another prompt.", headers={"x-agent-version": "v2"})
        posts = hooks.wait_for(lambda p: len(p) >= 2)
        metrics = {
            (s.name, s.labels.get("agent")): s.value
            for family in text_string_to_metric_families(httpx.get(gateway.url + "/metrics").text)
            for s in family.samples
        }
        gateway.stop()
        again = gateway_factory(settings)  # a restart on the same ledger: nothing is new to it
        ask(again.http(AGENT_KEY), PROMPT.format(day="2027-01-01", user="Di"))
        ask(again.http(AGENT_KEY), "Another prompt.", headers={"x-agent-version": "v2"})
        ask(again.http(AGENT_KEY), "A third prompt.")
        posts = hooks.wait_for(lambda p: len(p) >= 3)
        time.sleep(0.3)  # nothing more arrives
        posts = list(hooks.posts)
    assert [(p["type"], p["agent"], p["source"]) for p in posts] == [
        ("agent_version.new", "crawler", "fingerprint"),
        ("agent_version.new", "crawler", "header"),
        ("agent_version.new", "crawler", "fingerprint"),
    ]
    assert posts[1]["version"] == "v2" and posts[0]["model"] == "oa-gpt-x" and posts[0]["tools"] == []
    assert metrics[("agentgw_agent_versions_new_total", "crawler")] == 2
    announced = [r.getMessage() for r in caplog.records if r.getMessage().startswith("new workflow version")]
    assert len(announced) == 3 and "of agent 'crawler' (team 'research', fingerprint)" in announced[0]
    with sqlite3.connect(tmp_path / "shared.db") as db:
        assert db.execute("SELECT COUNT(*) FROM agent_versions").fetchone()[0] == 3


def test_the_messages_api_gets_versions_too(standin: StandIn, gateway_factory: Any) -> None:
    with WebhookReceiver() as hooks:
        gateway = gateway_factory(config(standin, hooks))
        client = anthropic.Anthropic(base_url=gateway.url, api_key=ADMIN_KEY, max_retries=0)
        answer = client.messages.with_raw_response.create(
            model="an-gpt-x", max_tokens=64, system="You plan trips.", messages=[{"role": "user", "content": "hi"}]
        )
        client.close()
        chat = gateway.http(ADMIN_KEY).post("/v1/chat/completions", json={
            "model": "an-gpt-x", "messages": [{"role": "system", "content": "You plan trips."},
                                              {"role": "user", "content": "hello"}]})  # fmt: skip
    assert answer.headers["x-agentgw-agent-version"] == chat.headers["x-agentgw-agent-version"]
