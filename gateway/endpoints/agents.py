"""GET /v1/agents and GET /v1/agents/compare.

`/v1/agents`: each agent the key may see, with its calls, errors and error rate, cost, tasks and cost
per task, sessions, latency percentiles, the APIs and models it used, its guardrail trigger rate,
feedback and online judge scores, and its workflow versions (`gateway.agentops.insights`: first and
last seen, calls, cost per task, error rate, guardrail trigger rate, feedback score, judge score, eval
runs, what defines each; `versions=false` leaves them out, and reads half as much); most expensive
first. Window and filters as `/v1/usage`, scoped the same way.

`/v1/agents/compare?agent=NAME&a=VERSION&b=VERSION`: two versions of one agent side by side, with b
minus a on each number and what changed in their definition (model, tools, guardrails, prompt).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.agentops import insights as versions
from gateway.endpoints.intake import identify, runtime_of
from gateway.endpoints.scope import feedback_filter
from gateway.endpoints.window import choice, scoped_query
from gateway.errors import InvalidRequest, NotFound
from gateway.metering import insights, report


async def agents(request: Request) -> JSONResponse:
    query, extra, ledger = await scoped_query(request, ("versions",))
    principal = identify(request, runtime_of(request)).principal
    rows = await insights.agents(ledger, query)
    if choice(extra, "versions", ("true", "false"), "true") == "false":  # the console's table draws none
        return JSONResponse({"object": "list", "from": report.iso(query.start), "to": report.iso(query.end),
                             "data": rows})  # fmt: skip
    by_agent: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in await versions.versions(ledger, query, feedback_filter(principal, "f")):
        by_agent.setdefault((row["team"], row["agent"]), []).append(row)
    for row in rows:
        found = by_agent.get((row["team"], row["agent"]), [])
        row.update(versions.agent_summary(found))
        row["versions"] = [{k: v for k, v in item.items() if k not in ("team", "agent")} for item in found]
    return JSONResponse({"object": "list", "from": report.iso(query.start), "to": report.iso(query.end), "data": rows})


async def compare(request: Request) -> JSONResponse:
    query, extra, ledger = await scoped_query(request, ("a", "b"))
    names = dict(query.filters)
    if "agent" not in names or "a" not in extra or "b" not in extra:
        raise InvalidRequest("Compare two versions of one agent: give 'agent', 'a' and 'b'.", param="agent")
    principal = identify(request, runtime_of(request)).principal
    rows = await versions.versions(ledger, query, feedback_filter(principal, "f"))
    picked = []
    for side in ("a", "b"):
        found = [row for row in rows if row["version"] == extra[side]]
        if not found:
            raise NotFound(f"No calls of version '{extra[side]}' of agent '{names['agent']}' in the window.")
        if len(found) > 1:
            raise InvalidRequest("Agents of that name in several teams: give 'team' too.", param="team")
        picked.append(found[0])
    return JSONResponse(versions.compare(*picked))
