"""`agentgw eval run` against a real gateway: cases replayed through it (metered, attributed to the
run's task), scored by each check (a judge model through the gateway too), held to gates (the exit
status), written as JUnit XML, and stored per agent version; production failures exported as feedback
become cases judged against what the reviewer said."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
import yaml

from gateway.cli import main
from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, base_config, write_config
from tests.standin import StandIn

PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0}
BOOK = {"type": "function", "function": {"name": "book", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "enum": ["Paris"]}}}}}  # fmt: skip
CASES = [
    {"id": "paris", "input": "Capital of France? It is Paris.", "expected": "paris"},
    {"id": "count", "input": "Count to 42", "checks": [{"type": "regex", "pattern": r"\b42\b"}]},
    {"id": "tool", "input": "Book a trip", "tools": [BOOK],
     "checks": [{"type": "tool_call", "name": "book", "arguments": {"city": "Paris"}}]},
    {"id": "judged", "input": "Explain this SCORE=0.9 please", "checks": [{"type": "judge", "rubric": "Helpful."}]},
    {"id": "off", "input": "What is WRONG here?", "checks": [{"type": "judge", "rubric": "Helpful."}]},
]  # fmt: skip


def config(standin: StandIn) -> dict[str, Any]:
    config = base_config(standin)
    for name in ("oa-gpt-x", "an-gpt-x"):
        config["models"][name].update(PRICE)
    config["models"]["oa-judge"] = {"provider": "standin-openai", "upstream": "judge"}
    config["models"]["oa-flaky-500-2"] = {"provider": "standin-openai", "upstream": "flaky-500-2"}
    config["telemetry"] = {"capture_content": {"enabled": True}}
    return config


def write_cases(path: Path, cases: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(case) + "\n" for case in cases))
    return str(path)


def evaluate(gateway: Any, *args: str, key: str = ADMIN_KEY) -> int:
    return main(["eval", "run", *args, "--url", gateway.url, "--api-key", key])


def test_a_run_is_scored_gated_written_and_stored(
    standin: StandIn, gateway_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = gateway_factory(config(standin))
    cases = write_cases(tmp_path / "cases.jsonl", CASES)
    xml = tmp_path / "eval.xml"
    status = evaluate(
        gateway,
        cases,
        "--model",
        "oa-gpt-x",
        "--baseline",
        "an-gpt-x",
        "--judge",
        "oa-judge",
        "--gate",
        "pass_rate>=0.8",
        "--gate",
        "regression<=0.05",
        "--junit",
        str(xml),
        "--name",
        "nightly",
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert "off: judge 'Helpful.': stand-in judge" in out and "PASS  pass_rate>=0.8  (0.8)" in out

    report = ET.parse(xml).getroot()  # noqa: S314 - written by the command under test
    candidate = report.find("testsuite[@name='candidate: oa-gpt-x']")
    assert candidate is not None and candidate.get("tests") == "5" and candidate.get("failures") == "1"
    assert candidate.find("testcase[@name='off']/failure") is not None
    assert report.find("testsuite[@name='gates']/testcase[@name='regression<=0.05']") is not None

    runs = gateway.http().get("/v1/evals/runs").json()["data"]
    assert [(r["variant"], r["model"], r["pass_rate"], r["cases"], r["passed"]) for r in runs] == [
        ("baseline", "an-gpt-x", 0.8, 5, True), ("candidate", "oa-gpt-x", 0.8, 5, True)]  # fmt: skip
    [run_id] = {r["run_id"] for r in runs}
    assert runs[1]["agent_version"].startswith("fp-") and runs[1]["name"] == "nightly"
    assert runs[1]["cost_usd"] > 0 and runs[1]["gates"][0] == {"gate": "pass_rate>=0.8", "value": 0.8, "passed": True}

    usage = gateway.http().get("/v1/usage", params={"group_by": "task,model"}).json()["data"]
    by_model = {row["model"]: row["requests"] for row in usage if row["task"] == f"eval-{run_id}"}
    assert by_model == {"oa-gpt-x": 5, "an-gpt-x": 5, "oa-judge": 4}  # the judge's calls are metered too
    with sqlite3.connect(gateway.ledger_path) as db:
        scores = db.execute("SELECT case_id, passed FROM eval_scores WHERE run_id = ? AND kind = 'offline'",
                            (run_id,)).fetchall()  # fmt: skip
    assert len(scores) == 10 and ("off", 0) in scores

    assert evaluate(gateway, cases, "--model", "oa-gpt-x", "--judge", "oa-judge", "--gate", "pass_rate>=0.9") == 1
    assert evaluate(gateway, cases, "--model", "oa-gpt-x", "--judge", "oa-judge", "--no-store",
                    "--gate", "cost_per_case<=0.000000001") == 1  # fmt: skip
    assert "FAIL  cost_per_case" in capsys.readouterr().out


def test_a_regression_against_the_baseline_fails_the_run(
    standin: StandIn, gateway_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = gateway_factory(config(standin))
    cases = write_cases(tmp_path / "cases.jsonl", [{"id": f"q{i}", "input": f"Say hello {i}", "expected": "hello"}
                                                   for i in range(5)])  # fmt: skip
    status = evaluate(gateway, cases, "--model", "oa-flaky-500-2", "--baseline", "oa-gpt-x", "--concurrency", "1",
                      "--gate", "regression<=0.05", "--gate", "errors<=2")  # fmt: skip
    out = capsys.readouterr().out
    assert status == 1, out
    assert "regression: +0.4000" in out and "FAIL  regression<=0.05  (0.4)" in out and "PASS  errors<=2  (2)" in out
    assert "passed on the baseline, failed now: q0, q1" in out


def test_flagged_production_calls_become_cases_judged_against_their_feedback(
    standin: StandIn, gateway_factory: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = gateway_factory(config(standin))
    agent = gateway.http(AGENT_KEY)
    flagged = []
    for question, comment in [("Which city for the summit?", "the city was off"), ("Is the hotel booked?", "WRONG")]:
        answer = agent.post("/v1/chat/completions", json={"model": "oa-gpt-x", "messages": [
            {"role": "system", "content": "You plan trips."}, {"role": "user", "content": question}]})  # fmt: skip
        request_id = answer.headers["x-request-id"]
        assert (
            agent.post("/v1/feedback", json={"request_id": request_id, "label": "bad", "comment": comment}).status_code
            == 201
        )
        flagged.append(request_id)
    exported = agent.get("/v1/feedback/export", params={"label": "bad"}).text
    cases = tmp_path / "flagged.jsonl"
    cases.write_text(exported)
    assert evaluate(gateway, str(cases), "--model", "oa-gpt-x", key=AGENT_KEY) == 2  # exported cases need a judge
    assert "give --judge MODEL" in capsys.readouterr().err
    status = evaluate(gateway, str(cases), "--model", "oa-gpt-x", "--judge", "oa-judge", "--gate", "pass_rate>=1",
                      key=AGENT_KEY)  # fmt: skip
    out = capsys.readouterr().out
    assert status == 1 and f"{flagged[1]}: judge" in out and flagged[0] not in out.split("failed (1):")[1]
    runs = gateway.http(AGENT_KEY).get("/v1/evals/runs").json()["data"]
    assert [(r["agent"], r["team"], r["passed_cases"]) for r in runs] == [("crawler", "research", 1)]


def test_without_a_url_it_serves_the_configs_gateway_itself(standin: StandIn, tmp_path: Path) -> None:
    path, ledger = tmp_path / "config.yaml", tmp_path / "ledger.db"
    write_config(path, config(standin), ledger)
    cases = write_cases(tmp_path / "cases.jsonl", CASES[:2])
    assert main(["eval", "run", cases, "--route", "oa-gpt-x", "-c", str(path), "--api-key", ADMIN_KEY]) == 0
    with sqlite3.connect(ledger) as db:
        assert db.execute("SELECT variant, cases, pass_rate FROM eval_runs").fetchall() == [("candidate", 2, 1.0)]
        assert db.execute("SELECT COUNT(*) FROM usage_events WHERE task LIKE 'eval-%'").fetchone()[0] == 2
    assert yaml.safe_load(path.read_text())["server"]["port"] == 0


def test_what_cannot_run_says_why(standin: StandIn, gateway_factory: Any, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    gateway = gateway_factory(config(standin))
    cases = write_cases(tmp_path / "cases.jsonl", CASES[:1])
    assert evaluate(gateway, cases, "--model", "oa-gpt-x", "--gate", "regression<=0.1") == 2
    assert "needs --baseline" in capsys.readouterr().err
    assert evaluate(gateway, cases, "--model", "oa-gpt-x", "--gate", "speed>=1") == 2
    assert "unknown metric 'speed'" in capsys.readouterr().err
    assert evaluate(gateway, cases, "--model", "oa-fail-500") == 2
    assert "every call failed; the first: 502" in capsys.readouterr().err
    assert evaluate(gateway, str(tmp_path / "missing.jsonl"), "--model", "oa-gpt-x") == 2
    assert httpx.get(gateway.url + "/healthz").status_code == 200
