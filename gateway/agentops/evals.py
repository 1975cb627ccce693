"""An eval run: cases replayed through a gateway on a model or route (and a baseline), scored, summed
up, and held to gates.

Every call goes through the gateway's Chat Completions endpoint like any agent's: metered, budgeted,
traced, attributed to the task `eval-<run id>` (judge calls tagged `agentops=judge`), with the
version the gateway gives it (`x-agentgw-agent-version`) kept per case. Gates are `metric op number`:

    pass_rate       cases passed / cases                      (pass_rate>=0.9)
    mean_score      the mean case score (judge scores, 1/0 for the other checks)
    cost_per_case   USD per case, the candidate's calls only (the judge's are apart)
    latency_p50_ms, latency_p95_ms                            of the candidate's calls
    errors          cases whose call failed
    regression      the baseline's pass rate minus the candidate's (needs --baseline)
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from gateway.agentops import judge
from gateway.agentops.cases import Case
from gateway.agentops.checks import Answer, Judge, Result, run

GATE = re.compile(r"^\s*([a-z_0-9]+)\s*(>=|<=|==|>|<)\s*(-?[0-9.]+(?:[eE][-+]?\d+)?)\s*$")
METRICS = ("pass_rate", "mean_score", "cost_per_case", "latency_p50_ms", "latency_p95_ms", "errors", "regression")
JUDGE_TAGS = "agentops=judge"


class GateError(ValueError):
    """A gate that cannot be read."""


@dataclass(frozen=True, slots=True)
class Gate:
    text: str
    metric: str
    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> Gate:
        match = GATE.match(text)
        if match is None:
            raise GateError(f"{text!r}: a gate is `metric op number`, e.g. pass_rate>=0.9")
        metric, op, bound = match.groups()
        if metric not in METRICS:
            raise GateError(f"{text!r}: unknown metric {metric!r}; use one of {', '.join(METRICS)}")
        return cls(text.strip(), metric, op, float(bound))

    def holds(self, value: float) -> bool:
        return {
            ">=": value >= self.bound,
            "<=": value <= self.bound,
            ">": value > self.bound,
            "<": value < self.bound,
            "==": value == self.bound,
        }[self.op]


@dataclass(slots=True)
class CaseResult:
    case_id: str
    passed: bool
    score: float
    checks: list[Result] = field(default_factory=list)
    answer: str = ""
    request_id: str | None = None
    agent_version: str | None = None
    cost_usd: float = 0.0
    latency_ms: float | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id, "passed": self.passed, "score": self.score, "request_id": self.request_id,
            "agent_version": self.agent_version, "cost_usd": self.cost_usd, "latency_ms": self.latency_ms,
            "error": self.error, "checks": [c.as_dict() for c in self.checks],
        }  # fmt: skip


@dataclass(slots=True)
class Variant:
    """The cases' results on one model or route."""

    variant: str  # candidate | baseline
    model: str
    results: list[CaseResult]
    judge_cost_usd: float = 0.0

    @property
    def cases(self) -> int:
        return len(self.results)

    @property
    def passed_cases(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def errors(self) -> int:
        return sum(r.error is not None for r in self.results)

    @property
    def pass_rate(self) -> float:
        return self.passed_cases / self.cases if self.cases else 0.0

    @property
    def mean_score(self) -> float:
        return sum(r.score for r in self.results) / self.cases if self.cases else 0.0

    @property
    def cost_usd(self) -> float:
        return round(sum(r.cost_usd for r in self.results), 9)

    @property
    def cost_per_case(self) -> float:
        return self.cost_usd / self.cases if self.cases else 0.0

    def latency(self, p: float) -> float:
        values = sorted(r.latency_ms for r in self.results if r.latency_ms is not None)
        return round(values[max(0, math.ceil(p / 100 * len(values)) - 1)], 3) if values else 0.0

    @property
    def agent_version(self) -> str | None:
        """The version most of its calls had (a run usually has one)."""
        versions = [r.agent_version for r in self.results if r.agent_version]
        return max(set(versions), key=versions.count) if versions else None

    def metrics(self) -> dict[str, float]:
        return {
            "pass_rate": round(self.pass_rate, 4), "mean_score": round(self.mean_score, 4),
            "cost_per_case": round(self.cost_per_case, 9), "latency_p50_ms": self.latency(50),
            "latency_p95_ms": self.latency(95), "errors": float(self.errors),
        }  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant, "model": self.model, "agent_version": self.agent_version, "cases": self.cases,
            "passed_cases": self.passed_cases, "errors": self.errors, "pass_rate": self.pass_rate,
            "mean_score": self.mean_score, "cost_usd": self.cost_usd, "judge_cost_usd": round(self.judge_cost_usd, 9),
            "latency_p50_ms": self.latency(50), "latency_p95_ms": self.latency(95),
            "results": [r.as_dict() for r in self.results],
        }  # fmt: skip


@dataclass(slots=True)
class Run:
    run_id: str
    name: str | None
    candidate: Variant
    baseline: Variant | None
    gates: list[tuple[Gate, float | None, bool]]  # the gate, its value, whether it holds

    @property
    def passed(self) -> bool:
        return all(ok for _, _, ok in self.gates)

    @property
    def regression(self) -> float | None:
        return None if self.baseline is None else round(self.baseline.pass_rate - self.candidate.pass_rate, 4)

    @property
    def regressed_cases(self) -> list[str]:
        if self.baseline is None:
            return []
        before = {r.case_id: r.passed for r in self.baseline.results}
        return [r.case_id for r in self.candidate.results if before.get(r.case_id) and not r.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "name": self.name,
            "passed": self.passed,
            "regression": self.regression,
            "regressed_cases": self.regressed_cases,
            "gates": [{"gate": g.text, "value": v, "passed": ok} for g, v, ok in self.gates],
            "variants": [v.as_dict() for v in (self.candidate, self.baseline) if v is not None],
        }


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def task_of(run_id: str) -> str:
    return f"eval-{run_id}"


class Runner:
    """Replays cases through a gateway (`client`: an httpx client with the gateway's URL and key)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        run_id: str,
        *,
        judge_model: str | None = None,
        agent: str | None = None,
        concurrency: int = 4,
        max_chars: int = 8000,
    ) -> None:
        self._client = client
        self.run_id = run_id
        self._judge_model = judge_model
        self._agent = agent
        self._limit = asyncio.Semaphore(concurrency)
        self._max_chars = max_chars

    def _headers(self, version: str | None = None, tags: str | None = None) -> dict[str, str]:
        headers = {"x-task-id": task_of(self.run_id)}
        if self._agent:
            headers["x-agent-id"] = self._agent
        if version:
            headers["x-agent-version"] = version
        if tags:
            headers["x-tags"] = tags
        return headers

    async def variant(self, variant: str, model: str, cases: Sequence[Case], version: str | None = None) -> Variant:
        judge_costs: list[float] = []
        results = await asyncio.gather(*(self._case(model, case, version, judge_costs) for case in cases))
        return Variant(variant, model, list(results), sum(judge_costs))

    async def _case(self, model: str, case: Case, version: str | None, judge_costs: list[float]) -> CaseResult:
        body: dict[str, Any] = {"model": model, "messages": case.messages}
        if case.tools:
            body["tools"] = case.tools
        async with self._limit:
            started = time.perf_counter()
            try:
                response = await self._client.post("/v1/chat/completions", json=body, headers=self._headers(version))
            except httpx.HTTPError as exc:
                return CaseResult(case.id, False, 0.0, error=f"the gateway could not be reached: {exc}")
            latency = round((time.perf_counter() - started) * 1000, 3)
        request_id = response.headers.get("x-request-id")
        if response.status_code != 200:
            return CaseResult(case.id, False, 0.0, request_id=request_id, latency_ms=latency,
                              error=f"{response.status_code}: {_error_message(response)}")  # fmt: skip
        answer = Answer.of(response.json())
        conversation = judge.transcript(case.messages, self._max_chars)

        async def ask(check: Judge, text: str) -> judge.Judgement:
            judged, cost = await self.judge(check, conversation, text)
            judge_costs.append(cost)
            return judged

        scored = await run(case.checks, answer, ask if (self._judge_model or _judges(case)) else None)
        score = sum(r.score for r in scored) / len(scored) if scored else 0.0
        return CaseResult(
            case.id, all(r.passed for r in scored), round(score, 4), scored, answer.text[:2000], request_id,
            response.headers.get("x-agentgw-agent-version"), _cost(response), latency,
        )  # fmt: skip

    async def judge(self, check: Judge, conversation: str, answer: str) -> tuple[judge.Judgement, float]:
        """A judge check through the gateway: the judgement and what the judge's call cost."""
        model = check.model or self._judge_model
        if model is None:
            return judge.Judgement(0.0, False, "no judge model"), 0.0
        body = judge.request(model, check.rubric, conversation, answer, max_chars=self._max_chars)
        async with self._limit:
            response = await self._client.post(
                "/v1/chat/completions", json=body, headers=self._headers(tags=JUDGE_TAGS)
            )
        if response.status_code == 400 and ("response_format" in response.text or "json_schema" in response.text):
            body.pop("response_format", None)  # a judge without structured output: its instructions suffice
            async with self._limit:
                response = await self._client.post(
                    "/v1/chat/completions", json=body, headers=self._headers(tags=JUDGE_TAGS)
                )
        if response.status_code != 200:
            return judge.Judgement(0.0, False, f"the judge's call failed: {response.status_code}"), 0.0
        try:
            judged = judge.parse(judge.answer_text(response.json()))
        except judge.Unreadable as exc:
            judged = judge.Judgement(0.0, False, str(exc))
        return judged, _cost(response)


def _judges(case: Case) -> bool:
    return any(isinstance(check, Judge) and check.model for check in case.checks)


def _cost(response: httpx.Response) -> float:
    try:
        return float(response.headers.get("x-agentgw-cost-usd", 0) or 0)
    except ValueError:
        return 0.0


def _error_message(response: httpx.Response) -> str:
    try:
        error = orjson.loads(response.content).get("error")
        return str(error.get("message") if isinstance(error, dict) else error)[:300]
    except (orjson.JSONDecodeError, AttributeError):
        return response.text[:300]


def apply_gates(
    gates: Sequence[Gate], candidate: Variant, baseline: Variant | None
) -> list[tuple[Gate, float | None, bool]]:
    """Each gate with the candidate's value and whether it holds (a regression gate without a baseline
    fails: it cannot be told)."""
    values: dict[str, float | None] = {**candidate.metrics()}
    values["regression"] = None if baseline is None else round(baseline.pass_rate - candidate.pass_rate, 4)
    out = []
    for gate in gates:
        value = values[gate.metric]
        out.append((gate, value, value is not None and gate.holds(value)))
    return out
