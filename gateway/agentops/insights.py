"""Workflow versions for `GET /v1/agents` and `GET /v1/agents/compare`: per agent and version, what it
is (model, tools, guardrails, prompt digest, as first seen) and how it does in the window.

Over the window's production model calls (not eval runs' calls, tasks `eval-*`, nor the online judge's,
task `online-eval`; MCP tool calls carry no version): calls, errors and error rate, cost and cost per
task, latency, the share of calls a guardrail fired on, the mean feedback score (feedback on a call,
its session or its task counts for every version the calls it reaches ran), the online judge's mean
score and pass rate; and the version's latest eval runs (`agentgw eval run`), whenever they ran. First
and last seen: the version's first call ever (the `agent_versions` table), its last call in the window.

Only constant SQL; every value is a bound parameter. Rows without a version (calls before versions
were kept, or with fingerprinting off and no X-Agent-Version) appear as version `null`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson

from gateway.metering.ledger import Ledger
from gateway.metering.pricing import usd
from gateway.metering.report import DIMENSIONS, UsageQuery, iso

NOT_EVAL = "(e.task IS NULL OR (e.task NOT LIKE 'eval-%' AND e.task <> 'online-eval'))"
MODEL_CALLS = "e.operation <> 'tool_call'"  # MCP tool calls carry no workflow version
ERROR = "CASE WHEN e.outcome IN ('error', 'shutdown') THEN 1 ELSE 0 END"
RUNS_PER_VERSION = 5
# What the two versions of a comparison are compared on (b minus a).
COMPARED = ("error_rate", "cost_per_task_usd", "cost_per_call_usd", "latency_mean_ms", "guardrail_rate",
            "feedback_score", "judge_score", "judge_pass_rate", "eval_pass_rate")  # fmt: skip
Key = tuple[str, str, str | None]


def _where(query: UsageQuery, table: str, columns: Iterable[str] | None = None) -> tuple[str, list[Any]]:
    """The query's filters on `table`'s columns (those it has, when `columns` is given)."""
    clauses, params = [], []
    for name, value in query.filters:
        column = DIMENSIONS[name]
        if columns is not None and column not in columns:
            continue
        clauses.append(f"{table}.{column} = ?")
        params.append(value)
    return " AND ".join(clauses) or "1 = 1", params


async def versions(
    ledger: Ledger, query: UsageQuery, feedback_scope: tuple[str, list[Any]] = ("1 = 1", [])
) -> list[dict[str, Any]]:
    """Every (team, agent, version) with calls in the window, each agent's newest first; `feedback_scope`:
    a condition on the feedback table `f` that the caller may read (`gateway.endpoints.scope`)."""
    where, params = _where(query, "e")
    window = [query.start, query.end, *params]
    calls, guarded, feedback, judged = await asyncio.gather(
        ledger.query(
            f"SELECT e.team, e.agent, e.agent_version, COUNT(*), SUM({ERROR}), SUM(e.cost_nanos), MIN(e.ts), "  # noqa: S608 - constants
            "MAX(e.ts), COUNT(DISTINCT e.task), SUM(CASE WHEN e.task IS NULL THEN 0 ELSE e.cost_nanos END), "
            "SUM(CASE WHEN e.outcome = 'ok' THEN e.latency_ms ELSE 0 END), SUM(CASE WHEN e.outcome = 'ok' THEN 1 "
            "ELSE 0 END) FROM usage_events e "
            f"WHERE e.ts >= ? AND e.ts < ? AND {where} AND {NOT_EVAL} AND {MODEL_CALLS} "
            "GROUP BY e.team, e.agent, e.agent_version",
            window,
        ),
        ledger.query(
            "SELECT e.team, e.agent, e.agent_version, e.guardrails FROM usage_events e "  # noqa: S608 - constants
            f"WHERE e.ts >= ? AND e.ts < ? AND {where} AND {NOT_EVAL} AND {MODEL_CALLS} AND e.guardrails <> '[]'",
            window,
        ),
        _feedback(ledger, query, feedback_scope),
        _judged(ledger, query),
    )
    found: dict[Key, dict[str, Any]] = {}
    for team, agent, version, n, errors, nanos, first, last, tasks, task_nanos, latency, answered in (
        tuple(r) for r in calls
    ):
        found[(team, agent, version)] = {
            "team": team, "agent": agent, "version": version, "first_call": first, "last_seen": last,
            "calls": n, "errors": int(errors or 0), "nanos": int(nanos or 0), "tasks": int(tasks or 0),
            "task_nanos": int(task_nanos or 0), "latency_sum": float(latency or 0), "answered": int(answered or 0),
            "guarded": 0, "feedback": [], "judged": [],
        }  # fmt: skip
    for team, agent, version, verdicts in (tuple(r) for r in guarded):
        item = found.get((team, agent, version))
        if item is not None and any(int(v.get("count") or 0) for v in orjson.loads(verdicts)):
            item["guarded"] += 1
    for key, scores in feedback.items():
        if key in found:
            found[key]["feedback"] = scores
    for key, scores in judged.items():
        if key in found:
            found[key]["judged"] = scores
    defined = await _definitions(ledger, found)
    runs = await _eval_runs(ledger, found)
    out = [_version_row(item, defined.get(key), runs.get(key, [])) for key, item in found.items()]
    out.sort(key=lambda v: (v["team"], v["agent"], v["last_seen"] is None, -(v["_last"] or 0)))
    for row in out:
        row.pop("_last")
    return out


async def _feedback(ledger: Ledger, query: UsageQuery, feedback_scope: tuple[str, list[Any]]) -> dict[Key, list[float]]:
    """Feedback scores per version: a score counts once for each version among the calls it reaches."""
    where, params = _where(query, "e")
    scope, scope_params = feedback_scope
    rows = await ledger.query(
        "SELECT DISTINCT f.id, f.score, e.team, e.agent, e.agent_version FROM feedback f CROSS JOIN usage_events e "  # noqa: S608
        "WHERE f.score IS NOT NULL AND e.team = f.team AND (e.request_id = f.request_id OR e.session = f.session "
        f"OR e.task = f.task) AND e.ts >= ? AND e.ts < ? AND {where} AND {NOT_EVAL} AND {MODEL_CALLS} AND {scope}",
        [query.start, query.end, *params, *scope_params],
    )
    out: dict[Key, list[float]] = defaultdict(list)
    for _, score, team, agent, version in (tuple(r) for r in rows):
        out[(team, agent, version)].append(float(score))
    return out


async def _judged(ledger: Ledger, query: UsageQuery) -> dict[Key, list[tuple[float, bool]]]:
    """The online judge's scores per version, in the window."""
    where, params = _where(query, "s", ("team", "agent", "agent_version", "key_name"))
    rows = await ledger.query(
        "SELECT s.team, s.agent, s.agent_version, s.score, s.passed FROM eval_scores s "  # noqa: S608 - constants
        f"WHERE s.kind = 'online' AND s.score IS NOT NULL AND s.ts >= ? AND s.ts < ? AND {where}",
        [query.start, query.end, *params],
    )
    out: dict[Key, list[tuple[float, bool]]] = defaultdict(list)
    for team, agent, version, score, passed in (tuple(r) for r in rows):
        out[(team, agent, version)].append((float(score), bool(passed)))
    return out


async def _definitions(ledger: Ledger, found: dict[Key, Any]) -> dict[Key, dict[str, Any]]:
    agents = sorted({(team, agent) for team, agent, _ in found})
    if not agents:
        return {}
    pairs = " OR ".join(["(team = ? AND agent = ?)"] * len(agents))
    rows = await ledger.query(
        "SELECT team, agent, version, first_seen, source, model, guardrails, tools, prompt_digest, prompt_chars "  # noqa: S608
        f"FROM agent_versions WHERE {pairs}",
        [value for pair in agents for value in pair],
    )
    out = {}
    for team, agent, version, first, source, model, guardrails, tools, digest, chars in (tuple(r) for r in rows):
        out[(team, agent, version)] = {
            "first_seen": first, "source": source, "model": model, "guardrails": orjson.loads(guardrails),
            "tools": [tool["name"] for tool in orjson.loads(tools)], "prompt_digest": digest, "prompt_chars": chars,
        }  # fmt: skip
    return out


async def _eval_runs(ledger: Ledger, found: dict[Key, Any]) -> dict[Key, list[dict[str, Any]]]:
    """The latest eval runs of each version (any time), newest first."""
    wanted = sorted({(t, a, v) for t, a, v in found if v is not None})
    if not wanted:
        return {}
    triples = " OR ".join(["(team = ? AND agent = ? AND agent_version = ?)"] * len(wanted))
    rows = await ledger.query(
        "SELECT team, agent, agent_version, ts, run_id, name, variant, model, cases, pass_rate, mean_score, passed "  # noqa: S608
        f"FROM eval_runs WHERE {triples} ORDER BY ts DESC",
        [value for triple in wanted for value in triple],
    )
    out: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for team, agent, version, ts, run_id, name, variant, model, cases, pass_rate, score, passed in (
        tuple(r) for r in rows
    ):
        runs = out[(team, agent, version)]
        if len(runs) < RUNS_PER_VERSION:
            runs.append({"run_id": run_id, "name": name, "time": iso(ts), "variant": variant, "model": model,
                         "cases": cases, "pass_rate": pass_rate, "mean_score": score,
                         "passed": bool(passed)})  # fmt: skip
    return out


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _version_row(item: dict[str, Any], defined: dict[str, Any] | None, runs: list[dict[str, Any]]) -> dict[str, Any]:
    calls, tasks, answered = item["calls"], item["tasks"], item["answered"]
    judged: list[tuple[float, bool]] = item["judged"]
    first = defined["first_seen"] if defined is not None else item["first_call"]
    return {
        "team": item["team"], "agent": item["agent"], "version": item["version"],
        "source": defined["source"] if defined else None,
        "first_seen": iso(first), "last_seen": iso(item["last_seen"]), "_last": item["last_seen"],
        "calls": calls, "errors": item["errors"], "error_rate": round(item["errors"] / calls, 4),
        "cost_usd": usd(item["nanos"]), "cost_per_call_usd": usd(item["nanos"] // calls), "tasks": tasks,
        "cost_per_task_usd": usd(item["task_nanos"] // tasks) if tasks else None,
        "latency_mean_ms": round(item["latency_sum"] / answered, 3) if answered else None,
        "guardrail_calls": item["guarded"], "guardrail_rate": round(item["guarded"] / calls, 4),
        "feedback": len(item["feedback"]), "feedback_score": _mean(item["feedback"]),
        "judged": len(judged), "judge_score": _mean([s for s, _ in judged]),
        "judge_pass_rate": _mean([float(p) for _, p in judged]),
        "eval_runs": runs, "eval_pass_rate": runs[0]["pass_rate"] if runs else None,
        "definition": {k: v for k, v in defined.items() if k not in ("first_seen", "source")} if defined else None,
    }  # fmt: skip


def agent_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One agent's versions added up: its guardrail, feedback and judge numbers over them."""
    calls = sum(r["calls"] for r in rows)
    guarded = sum(r["guardrail_calls"] for r in rows)
    feedback = [(r["feedback_score"], r["feedback"]) for r in rows if r["feedback"]]
    judged = [(r["judge_score"], r["judge_pass_rate"], r["judged"]) for r in rows if r["judged"]]
    n_feedback, n_judged = sum(n for _, n in feedback), sum(n for _, _, n in judged)
    return {
        "guardrail_rate": round(guarded / calls, 4) if calls else None,
        "feedback_score": round(sum(s * n for s, n in feedback) / n_feedback, 4) if n_feedback else None,
        "judge_score": round(sum(s * n for s, _, n in judged) / n_judged, 4) if n_judged else None,
        "judge_pass_rate": round(sum(p * n for _, p, n in judged) / n_judged, 4) if n_judged else None,
    }


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two versions side by side: each one's row, b minus a on each number, what changed in their definition."""
    difference = {}
    for name in COMPARED:
        x, y = a.get(name), b.get(name)
        difference[name] = None if x is None or y is None else round(y - x, 6)
    changed = []
    da, db = a.get("definition") or {}, b.get("definition") or {}
    for name in ("model", "tools", "guardrails", "prompt_digest"):
        if da.get(name) != db.get(name):
            changed.append({"part": name, "a": da.get(name), "b": db.get(name)})
    return {"object": "agent.version_comparison", "a": a, "b": b, "difference_b_minus_a": difference,
            "definition_changes": changed}  # fmt: skip
