"""Eval checks, case files and gates, without a gateway."""

from __future__ import annotations

import asyncio
from typing import Any
from xml.etree import ElementTree as ET

import orjson
import pytest

from gateway.agentops import judge
from gateway.agentops.cases import CaseError, parse
from gateway.agentops.checks import CHECKS, Answer, Judge, run
from gateway.agentops.evals import CaseResult, Gate, GateError, Run, Variant, apply_gates
from gateway.agentops.junit import document


def score(checks: list[dict[str, Any]], answer: Answer, judged: float | None = None) -> list[tuple[bool, float]]:
    async def ask(check: Judge, text: str) -> judge.Judgement:
        assert judged is not None
        return judge.Judgement(judged, judged >= 0.5, "because")

    results = asyncio.run(run(CHECKS.validate_python(checks), answer, ask if judged is not None else None))
    return [(r.passed, r.score) for r in results]


def test_each_check() -> None:
    text = Answer('{"city": "Paris", "nights": 2}')
    assert score([{"type": "exact", "value": ' {"city": "Paris", "nights": 2} '}], text) == [(True, 1.0)]
    assert score([{"type": "contains", "value": "paris"}], text) == [(True, 1.0)]
    assert score([{"type": "contains", "value": "paris", "case_sensitive": True}], text) == [(False, 0.0)]
    assert score([{"type": "regex", "pattern": r'"nights": \d'}], text) == [(True, 1.0)]
    schema = {"type": "object", "required": ["city"], "properties": {"nights": {"type": "integer", "maximum": 1}}}
    assert score([{"type": "json_schema", "schema": schema}], text) == [(False, 0.0)]
    assert score([{"type": "json_schema", "schema": {"type": "object"}}], text) == [(True, 1.0)]
    assert score([{"type": "json_schema", "schema": {"type": "object"}}], Answer("not json")) == [(False, 0.0)]


def test_tool_calls_are_matched_by_name_and_the_arguments_given() -> None:
    answer = Answer("", (("search", {"q": "x"}), ("book", {"city": "Paris", "dates": ["a", "b"], "opts": {"k": 1}})))
    assert score([{"type": "tool_call", "name": "book", "arguments": {"city": "Paris"}}], answer) == [(True, 1.0)]
    assert score([{"type": "tool_call", "name": "book", "arguments": {"opts": {"k": 1}}}], answer) == [(True, 1.0)]
    assert score([{"type": "tool_call", "name": "book", "arguments": {"city": "Rome"}}], answer) == [(False, 0.0)]
    assert score([{"type": "tool_call", "name": "cancel"}], answer) == [(False, 0.0)]
    completion = {
        "choices": [
            {
                "message": {
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "book", "arguments": '{"city": "Paris"}'}}
                    ],
                }
            }
        ]
    }
    assert Answer.of(completion).tool_calls == (("book", {"city": "Paris"}),)


def test_judge_checks_score_by_the_judge_and_its_threshold() -> None:
    assert score([{"type": "judge", "rubric": "r"}], Answer("x"), judged=0.7) == [(True, 0.7)]
    assert score([{"type": "judge", "rubric": "r", "threshold": 0.8}], Answer("x"), judged=0.7) == [(False, 0.7)]
    assert score([{"type": "judge", "rubric": "r"}], Answer("x")) == [(False, 0.0)]  # no judge to ask


def test_judge_replies_are_read_leniently() -> None:
    assert judge.parse('{"score": 0.8, "pass": true, "reason": "ok"}') == judge.Judgement(0.8, True, "ok")
    assert judge.parse('Sure! ```json\n{"score": 3, "reason": "x"}\n```').score == 1.0  # clamped
    assert judge.parse('{"pass": false}') == judge.Judgement(0.0, False, "")
    assert judge.parse("Verdict: FAIL - it invented a hotel.").passed is False
    with pytest.raises(judge.Unreadable):
        judge.parse("I think it is fine")
    body = judge.request("j", "be right", "user: hi", "hello")
    assert body["response_format"]["json_schema"]["schema"] == judge.SCHEMA
    assert "be right" in body["messages"][1]["content"] and "hello" in body["messages"][1]["content"]


EXPORTED = {
    "request_id": "req_1", "agent": "planner", "labels": ["wrong"],
    "input": [{"role": "system", "parts": [{"type": "text", "content": "You plan trips."}]},
              {"role": "user", "parts": [{"type": "text", "content": "Book Paris"}]},
              {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "book", "arguments": "{}"}]},
              {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "booked"}]}],
    "output": [{"role": "assistant", "parts": [{"type": "text", "content": "Booked Rome."}]}],
    "feedback": [{"on": "request", "score": 0, "label": "wrong", "comment": "wrong city"}],
}  # fmt: skip


def test_the_feedback_exports_cases_are_read_and_judged_against_their_feedback() -> None:
    [case] = parse([orjson.dumps(EXPORTED).decode()], judge_available=True)
    assert case.id == "req_1" and case.agent == "planner" and case.labels == ["wrong"]
    assert [m["role"] for m in case.messages] == ["system", "user", "assistant", "tool"]
    assert case.messages[2]["tool_calls"][0]["function"]["name"] == "book"
    assert case.messages[3] == {"role": "tool", "tool_call_id": "c1", "content": "booked"}
    [check] = case.checks
    assert isinstance(check, Judge) and "wrong city" in check.rubric and "Booked Rome." in check.rubric
    with pytest.raises(CaseError, match=r"line 1: .*give --judge MODEL"):
        list(parse([orjson.dumps(EXPORTED).decode()], judge_available=False))
    with_expected = {**EXPORTED, "expected": "Paris"}
    [case] = parse([orjson.dumps(with_expected).decode()], judge_available=False)
    assert [c.type for c in case.checks] == ["contains"]
    uncaptured = {**EXPORTED, "input": None}
    with pytest.raises(CaseError, match="not captured"):
        list(parse([orjson.dumps(uncaptured).decode()], judge_available=True))


def test_the_simple_form_and_what_replaces_prompts_and_tools() -> None:
    lines = ['{"input": "Capital of France?", "expected": "Paris"}', "",
             '{"id": "q2", "system": "Be brief.", "input": [{"role": "user", "content": "hi"}], '
             '"checks": [{"type": "regex", "pattern": "h"}]}']  # fmt: skip
    first, second = parse(lines, judge_available=False)
    assert first.id == "line-1" and first.messages == [{"role": "user", "content": "Capital of France?"}]
    assert second.messages[0] == {"role": "system", "content": "Be brief."}
    tools = [{"type": "function", "function": {"name": "t"}}]
    replaced = list(parse(lines, judge_available=False, system="New prompt.", tools=tools))
    assert [m["content"] for m in replaced[1].messages] == ["New prompt.", "hi"] and replaced[0].tools == tools
    for bad, message in [
        ("[1]", "a JSON object"), ('{"input": "x"}', "give `expected` or `checks`"),
        ('{"input": 3, "expected": "x"}', "`input` is"), ('{"input": "x", "checks": [{"type": "nope"}]}', "checks"),
        ('{"input": "x", "checks": [{"type": "regex", "pattern": "("}]}', "regular expression"), ("{", "not JSON"),
    ]:  # fmt: skip
        with pytest.raises(CaseError, match=message):
            list(parse([bad], judge_available=False))
    with pytest.raises(CaseError, match="used by an earlier case"):
        list(parse(['{"id": "a", "input": "x", "expected": "y"}'] * 2, judge_available=False))


def variant(name: str, passed: list[bool], cost: float = 0.001) -> Variant:
    results = [CaseResult(f"c{i}", ok, float(ok), cost_usd=cost, latency_ms=100.0 * (i + 1))
               for i, ok in enumerate(passed)]  # fmt: skip
    return Variant(name, "m-" + name, results)


def test_gates_hold_or_fail_on_the_runs_numbers() -> None:
    candidate, baseline = variant("candidate", [True, True, True, False]), variant("baseline", [True] * 4)
    gates = [Gate.parse(g) for g in ("pass_rate>=0.75", "cost_per_case<=0.0005", "latency_p95_ms<500",
                                     "regression<=0.05", "errors==0")]  # fmt: skip
    verdicts = apply_gates(gates, candidate, baseline)
    assert [(g.metric, v, ok) for g, v, ok in verdicts] == [
        ("pass_rate", 0.75, True), ("cost_per_case", 0.001, False), ("latency_p95_ms", 400.0, True),
        ("regression", 0.25, False), ("errors", 0.0, True),
    ]  # fmt: skip
    assert apply_gates([Gate.parse("regression<=0.1")], candidate, None)[0][2] is False  # no baseline: cannot hold
    for bad in ("pass_rate", "speed>=1", "pass_rate=>0.9"):
        with pytest.raises(GateError):
            Gate.parse(bad)


def test_junit_xml_for_ci() -> None:
    candidate, baseline = variant("candidate", [True, False]), variant("baseline", [True, True])
    candidate.results[1].error = "502: upstream_error"
    gates = apply_gates([Gate.parse("pass_rate>=0.9")], candidate, baseline)
    xml = ET.fromstring(document(Run("r1", None, candidate, baseline, gates)))  # noqa: S314 - our own document
    suites = {s.get("name"): s for s in xml.iter("testsuite")}
    assert set(suites) == {"candidate: m-candidate", "baseline: m-baseline", "gates"}
    assert suites["candidate: m-candidate"].get("errors") == "1"
    assert suites["candidate: m-candidate"].find("testcase[@name='c1']/error") is not None
    assert suites["gates"].find("testcase/failure").get("message") == "pass_rate>=0.9: 0.5"
    assert xml.get("tests") == "5" and xml.get("failures") == "1"
