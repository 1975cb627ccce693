"""Versions compared and production calls judged online, end to end: an agent's two workflow versions
in `GET /v1/agents` (first and last seen, calls, cost per task, error rate, guardrail trigger rate,
feedback score, the online judge's score, eval runs) and side by side in `/v1/agents/compare`; the
judge's calls sampled off the request path, sent through the gateway as the judge's own key (metered,
held to that key's budget), scores in the ledger and the metrics."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.cli import main
from tests.gateway_harness import AGENT_KEY, base_config
from tests.standin import StandIn

JUDGE_KEY = "agentgw-test-judge-key"
PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}


def config(standin: StandIn, judge_budget_usd: float = 10.0, sample_rate: float = 1.0) -> dict[str, Any]:
    config = base_config(standin)
    for name in ("oa-gpt-x", "oa-fail-500"):
        config["models"][name].update(PRICE)
    config["models"]["oa-judge"] = {"provider": "standin-openai", "upstream": "judge", **PRICE}
    config["guardrails"] = {"pii": {"type": "pii", "action": "redact"}}
    config["teams"]["research"] = {"guardrails": ["pii"]}
    config["keys"] += [
        {"name": "judge", "key": JUDGE_KEY, "team": "ops", "agent": "online-judge", "models": ["oa-judge"],
         "budget": {"usd": judge_budget_usd, "period": "total"}},
    ]  # fmt: skip
    config["agentops"] = {
        "online_eval": {"enabled": True, "key": "judge", "judge_model": "oa-judge", "sample_rate": sample_rate},
        "anomalies": {"enabled": False},
    }
    return config


def call(
    http: httpx.Client, version: str, system: str, user: str, task: str, model: str = "oa-gpt-x", stream: bool = False
) -> str:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    response = http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": messages, "stream": stream},
        headers={"x-agent-version": version, "x-task-id": task},
    )
    assert response.status_code in (200, 502), response.text
    return response.headers["x-request-id"]


def crawler(gateway: Any, **params: str) -> dict[str, Any]:
    rows = gateway.http().get("/v1/agents", params=params).json()["data"]
    return next(row for row in rows if row["agent"] == "crawler")


def samples(gateway: Any) -> dict[tuple[str, str], float]:
    text = httpx.get(gateway.url + "/metrics").text
    return {
        (s.name, s.labels.get("outcome") or s.labels.get("agent") or ""): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("agentgw_online_eval")
    }


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_two_versions_side_by_side_with_online_judge_scores(
    standin: StandIn, gateway_factory: Any, tmp_path: Path
) -> None:
    gateway = gateway_factory(config(standin))
    agent = gateway.http(AGENT_KEY)
    brief, thorough = "You plan trips. Be brief.", "You plan trips. Be thorough and cite sources."
    for i, task in enumerate(("t1", "t1", "t2", "t2")):
        call(agent, "v1", brief, "Plan Lisbon. SCORE=0.9", task, stream=i == 3)  # a streamed answer is judged too
    v2_calls = [
        call(agent, "v2", thorough, "Plan Porto. SCORE=0.2", "t3"),
        call(agent, "v2", thorough, "Plan Porto, mail ana@example.com SCORE=0.2", "t3"),
        call(agent, "v2", thorough, "Plan Faro. SCORE=0.2", "t4"),
        call(agent, "v2", thorough, "Plan Faro.", "t4", model="oa-fail-500"),
    ]
    assert agent.post("/v1/feedback", json={"task_id": "t1", "score": 1.0}).status_code == 201
    assert agent.post("/v1/feedback", json={"request_id": v2_calls[0], "score": 0.0}).status_code == 201
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"input": "Say hello", "expected": "hello"}\n{"input": "Say bye", "expected": "nope"}\n')
    assert main(["eval", "run", str(cases), "--model", "oa-gpt-x", "--agent-version", "v2",
                 "--system", str(_write(tmp_path / "p.txt", thorough)), "--url", gateway.url,
                 "--api-key", AGENT_KEY]) == 0  # fmt: skip

    # Seven answered production calls, each judged once, off the request path; eval calls and the failure are not.
    wait_for(lambda: samples(gateway).get(("agentgw_online_eval_samples_total", "scored")) == 7)
    row = crawler(gateway)
    versions = {v["version"]: v for v in row["versions"]}
    assert set(versions) == {"v1", "v2"}  # the eval run's calls (task eval-*) are not production traffic
    v1, v2 = versions["v1"], versions["v2"]
    assert (v1["calls"], v1["errors"], v1["error_rate"], v1["tasks"], v1["guardrail_rate"]) == (4, 0, 0.0, 2, 0.0)
    assert (v2["calls"], v2["errors"], v2["error_rate"], v2["tasks"], v2["guardrail_rate"]) == (4, 1, 0.25, 2, 0.25)
    assert v1["cost_per_task_usd"] == pytest.approx(v1["cost_usd"] / 2) and v1["cost_usd"] > 0
    assert (v1["judged"], v1["judge_score"], v1["judge_pass_rate"]) == (4, 0.9, 1.0)
    assert (v2["judged"], v2["judge_score"], v2["judge_pass_rate"]) == (3, 0.2, 0.0)
    assert (v1["feedback"], v1["feedback_score"], v2["feedback"], v2["feedback_score"]) == (1, 1.0, 1, 0.0)
    assert v1["eval_runs"] == [] and v2["eval_pass_rate"] == 0.5
    assert v2["eval_runs"][0]["cases"] == 2 and v2["eval_runs"][0]["model"] == "oa-gpt-x"
    assert v1["source"] == "header" and v1["definition"]["model"] == "oa-gpt-x"
    assert v1["definition"]["guardrails"] == ["pii"] and v1["first_seen"] <= v1["last_seen"]
    assert row["judge_score"] == pytest.approx((4 * 0.9 + 3 * 0.2) / 7, abs=1e-4)
    assert row["guardrail_rate"] == 0.125 and row["feedback_score"] == 0.5
    plain = crawler(gateway, versions="false")  # what the console reads: the agent's own numbers only
    assert "versions" not in plain and "judge_score" not in plain and plain["requests"] == row["requests"]

    compared = gateway.http().get("/v1/agents/compare", params={"agent": "crawler", "a": "v1", "b": "v2"}).json()
    assert compared["a"]["version"] == "v1" and compared["b"]["version"] == "v2"
    difference = compared["difference_b_minus_a"]
    assert difference["error_rate"] == 0.25 and difference["judge_score"] == pytest.approx(-0.7)
    assert difference["eval_pass_rate"] is None  # v1 has no eval run
    assert [c["part"] for c in compared["definition_changes"]] == ["prompt_digest"]
    missing = gateway.http().get("/v1/agents/compare", params={"agent": "crawler", "a": "v1", "b": "v9"})
    assert missing.status_code == 404
    assert gateway.http().get("/v1/agents/compare", params={"a": "v1", "b": "v2"}).status_code == 400
    assert gateway.http(AGENT_KEY).get("/v1/agents/compare", params={"agent": "crawler", "a": "v1", "b": "v2",
                                                                     "team": "ops"}).status_code == 403  # fmt: skip

    metrics = samples(gateway)
    assert metrics[("agentgw_online_eval_score_count", "crawler")] == 7
    with sqlite3.connect(gateway.ledger_path) as db:
        judged = db.execute(
            "SELECT s.agent_version, s.score, e.key_name, e.task, e.model FROM eval_scores s "
            "JOIN usage_events e ON e.request_id = s.judge_request_id WHERE s.kind = 'online'"
        ).fetchall()
    assert sorted(judged) == sorted([("v1", 0.9, "judge", "online-eval", "oa-judge")] * 4
                                    + [("v2", 0.2, "judge", "online-eval", "oa-judge")] * 3)  # fmt: skip


def test_the_judge_spends_its_own_budget_and_a_sample_rate_of_zero_judges_nothing(
    standin: StandIn, gateway_factory: Any
) -> None:
    gateway = gateway_factory(config(standin, judge_budget_usd=0.000001))
    agent = gateway.http(AGENT_KEY)
    for i in range(3):
        call(agent, "v1", "You plan trips.", f"Plan trip {i}.", f"t{i}")
    wait_for(lambda: samples(gateway).get(("agentgw_online_eval_samples_total", "budget")) == 3)
    assert crawler(gateway)["versions"][0]["calls"] == 3  # the agent's calls were never held back
    with sqlite3.connect(gateway.ledger_path) as db:
        assert db.execute("SELECT COUNT(*) FROM eval_scores").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM usage_events WHERE key_name = 'judge'").fetchone()[0] == 0
    gateway.stop()

    quiet = gateway_factory(config(standin, sample_rate=0.0))
    call(quiet.http(AGENT_KEY), "v1", "You plan trips.", "Plan.", "t9")
    time.sleep(0.3)
    assert ("agentgw_online_eval_samples_total", "scored") not in samples(quiet)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
