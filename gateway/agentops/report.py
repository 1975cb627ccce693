"""The report for people (`agentgw report`): a window of the ledger in Markdown or HTML.

Sections: cost per team, agent and task; top movers (agents whose cost changed most against the
window before, of the same length); error and latency SLOs per agent (targets given on the command
line); guardrail triggers per day; workflow versions introduced in the window with their numbers and
eval results; anomalies raised. Everything is read through the same functions as `/v1/usage`,
`/v1/agents` and `/v1/guardrails/triggers`; the report adds no SQL of its own but two small reads of
the agentops tables.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.agentops import insights as versions
from gateway.metering import insights
from gateway.metering import report as usage
from gateway.metering.ledger import Ledger

TOP = 15


ERROR_RATE_SLO = 0.01  # at most this share of an agent's calls fail
P95_MS_SLO = 10_000.0  # its answered calls' p95 latency


@dataclass(frozen=True, slots=True)
class Slo:
    error_rate: float = ERROR_RATE_SLO
    p95_ms: float = P95_MS_SLO


@dataclass(slots=True)
class Section:
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""
    empty: str = "Nothing in this window."


@dataclass(slots=True)
class Report:
    start: float
    end: float
    summary: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


def _usd(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.2f}" if value >= 100 else f"${value:.4f}" if value >= 1 else f"${value:.6f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


async def build(ledger: Ledger, start: float, end: float, slo: Slo = Slo()) -> Report:
    """The report of [start, end)."""
    out = Report(start, end)
    window = usage.UsageQuery((), start, end)
    before = usage.UsageQuery(("team", "agent"), start - (end - start), start)

    async def grouped(*by: str, query: usage.UsageQuery = window) -> list[dict[str, Any]]:
        return (await usage.run(ledger, usage.UsageQuery(by, query.start, query.end))).rows

    totals = (await usage.run(ledger, window)).totals
    out.summary = [
        f"{totals['requests']:,} calls, {totals['errors']:,} errors, {_usd(totals['cost_usd'])} spent",
    ]
    teams = sorted(await grouped("team"), key=lambda r: -r["cost_usd"])
    out.sections.append(Section("Cost per team", ["team", "calls", "errors", "cost"],
                                [[r["team"], f"{r['requests']:,}", f"{r['errors']:,}", _usd(r["cost_usd"])]
                                 for r in teams]))  # fmt: skip

    agents = await insights.agents(ledger, window)
    out.sections.append(Section(
        "Cost per agent", ["team", "agent", "calls", "cost", "tasks", "cost per task"],
        [[a["team"], a["agent"], f"{a['requests']:,}", _usd(a["cost_usd"]), str(a["tasks"]),
          _usd(a["cost_per_task_usd"])] for a in agents[:TOP]],
        note=f"The {TOP} most expensive." if len(agents) > TOP else "",
    ))  # fmt: skip

    tasks = sorted((r for r in await grouped("team", "agent", "task") if r["task"]), key=lambda r: -r["cost_usd"])
    out.sections.append(Section(
        "Most expensive tasks", ["team", "agent", "task", "calls", "cost"],
        [[r["team"], r["agent"], r["task"], f"{r['requests']:,}", _usd(r["cost_usd"])] for r in tasks[:TOP]],
        empty="No calls carried X-Task-Id.",
    ))  # fmt: skip

    earlier = {(r["team"], r["agent"]): r["cost_usd"] for r in await grouped("team", "agent", query=before)}
    now = {(a["team"], a["agent"]): a["cost_usd"] for a in agents}
    moves = [(key, earlier.get(key, 0.0), now.get(key, 0.0)) for key in {*earlier, *now}]
    moves = sorted((m for m in moves if m[1] != m[2]), key=lambda m: (-abs(m[2] - m[1]), m[0]))
    out.sections.append(Section(
        "Top movers", ["team", "agent", "cost before", "cost now", "change"],
        [[t, a, _usd(x), _usd(y), (f"{(y - x) / x:+.0%}" if x else "new")] for (t, a), x, y in moves[:10]],
        note="Cost against the window of the same length before this one.",
    ))  # fmt: skip

    slo_rows = []
    for a in agents:
        error_ok = a["error_rate"] <= slo.error_rate
        p95 = a["latency_p95_ms"]
        latency_ok = p95 is None or p95 <= slo.p95_ms
        slo_rows.append([a["team"], a["agent"], f"{a['requests']:,}", _pct(a["error_rate"]),
                         "met" if error_ok else "**missed**", _num(a["latency_p50_ms"], 4), _num(p95, 4),
                         "met" if latency_ok else "**missed**"])  # fmt: skip
    out.sections.append(Section(
        "Error and latency SLOs", ["team", "agent", "calls", "error rate", "errors SLO", "p50 ms", "p95 ms",
                                   "latency SLO"], slo_rows,
        note=f"Targets: error rate at most {_pct(slo.error_rate)}, p95 latency at most {slo.p95_ms:g} ms.",
    ))  # fmt: skip

    triggers = await insights.guardrail_triggers(ledger, window, "day")
    names = [t["guardrail"] for t in triggers["totals"]]
    days: dict[str, dict[str, int]] = {}
    for point in triggers["data"]:
        days.setdefault(point["bucket"], {})[point["guardrail"]] = point["calls"]
    out.sections.append(Section(
        "Guardrail triggers per day", ["day", *names],
        [[day, *(str(days[day].get(n, 0)) for n in names)] for day in sorted(days)],
        note="Calls on which each guardrail found something.", empty="No guardrail fired.",
    ))  # fmt: skip

    rows = await ledger.query(
        "SELECT team, agent, version, first_seen, source, model, tools FROM agent_versions "
        "WHERE first_seen >= ? AND first_seen < ? ORDER BY first_seen",
        [start, end],
    )
    stats = {(v["team"], v["agent"], v["version"]): v for v in await versions.versions(ledger, window)}
    introduced = []
    for team, agent, version, first, source, model, tools in (tuple(r) for r in rows):
        v = stats.get((team, agent, version), {})
        run = (v.get("eval_runs") or [None])[0]
        evaluated = "-" if run is None else f"{run['pass_rate']:.0%} ({'passed' if run['passed'] else 'FAILED'})"
        tool_names = ", ".join(t["name"] for t in orjson.loads(tools)) or "-"
        introduced.append([team, agent, version, _day(first), source, model or "-", tool_names,
                           f"{v.get('calls', 0):,}", _pct(v.get("error_rate")), _usd(v.get("cost_per_task_usd")),
                           _num(v.get("judge_score")), evaluated])  # fmt: skip
    out.sections.append(Section(
        "Versions introduced", ["team", "agent", "version", "first seen", "source", "model", "tools", "calls",
                                "error rate", "cost per task", "judge score", "latest eval"], introduced,
        empty="No new workflow versions.",
    ))  # fmt: skip

    anomalies = await ledger.query(
        "SELECT team, agent, agent_version, series, window_start, value, baseline, z FROM anomalies "
        "WHERE window_start >= ? AND window_start < ? ORDER BY window_start",
        [start, end],
    )
    out.sections.append(Section(
        "Anomalies", ["since", "team", "agent", "version", "series", "value", "baseline", "z"],
        [[_day(ws), t, a, v, s, _num(x, 4), _num(b, 4), f"{z:.1f}"]
         for t, a, v, s, ws, x, b, z in (tuple(r) for r in anomalies)],
        note="A series departing from its baseline (per agent, version `*`, or per version).",
        empty="No anomalies.",
    ))  # fmt: skip
    return out


def markdown(report: Report) -> str:
    lines = [f"# agentgw report: {_day(report.start)} to {_day(report.end)} UTC", "", *report.summary]
    for section in report.sections:
        lines += ["", f"## {section.title}", ""]
        if section.note:
            lines += [section.note, ""]
        if not section.rows:
            lines.append(section.empty)
            continue
        lines.append("| " + " | ".join(section.headers) + " |")
        lines.append("|" + "|".join("---" for _ in section.headers) + "|")
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in section.rows]
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def html_page(report: Report) -> str:
    title = f"agentgw report: {_day(report.start)} to {_day(report.end)} UTC"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f4f4f4}</style>",
        f"</head><body><h1>{html.escape(title)}</h1>",
        *(f"<p>{html.escape(line)}</p>" for line in report.summary),
    ]
    for section in report.sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.note:
            parts.append(f"<p>{html.escape(section.note)}</p>")
        if not section.rows:
            parts.append(f"<p>{html.escape(section.empty)}</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in section.headers) + "</tr>")
        for row in section.rows:
            cells = "".join(f"<td>{_html_cell(c)}</td>" for c in row)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_cell(text: str) -> str:
    if text.startswith("**") and text.endswith("**"):
        return f"<strong>{html.escape(text[2:-2])}</strong>"
    return html.escape(text)
