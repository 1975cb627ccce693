"""GET /v1/guardrails/scores: the distribution of one scoring guardrail's scores, read from the ledger.

    GET /v1/guardrails/scores?guardrail=injection&group_by=agent&from=7d

A prompt-injection guardrail with `action: flag` records its highest score on every call it scans
(verdicts carry the score, never the text), so before switching it to `block` an operator can read,
per agent (or key, team, model), how many calls it scored, how many reached the threshold, score
quantiles and a ten-bin histogram. Scoped like `/v1/usage`: an agent key sees its own calls, a team
admin its team's, an admin all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.endpoints.intake import identify, runtime_of
from gateway.endpoints.scope import sql_filter
from gateway.endpoints.sessions import require_ledger
from gateway.errors import InvalidRequest
from gateway.metering.report import DEFAULT_WINDOW, iso, parse_time

PARAMETERS = {"guardrail", "group_by", "from", "to"}
GROUPS = {"agent": "agent", "key": "key_name", "team": "team", "model": "model"}
QUANTILES = (0.5, 0.9, 0.95, 0.99)
BINS = 10


async def guardrail_scores(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    params = request.query_params
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        known = ", ".join(sorted(PARAMETERS))
        raise InvalidRequest(f"Unknown parameter '{unknown[0]}'; use {known}.", param=unknown[0])
    name = params.get("guardrail", "")
    if not name:
        raise InvalidRequest("Name the guardrail: ?guardrail=NAME.", param="guardrail")
    group_by = params.get("group_by", "")
    if group_by and group_by not in GROUPS:
        raise InvalidRequest(f"Cannot group by '{group_by}'; use one of {', '.join(GROUPS)}.", param="group_by")
    now = time.time()
    end = parse_time(params["to"], "to", now) if params.get("to") else now
    start = parse_time(params["from"], "from", now) if params.get("from") else end - DEFAULT_WINDOW.total_seconds()
    ledger = require_ledger(runtime.services.ledger)
    await ledger.flush()
    scope, scope_params = sql_filter(ctx.principal)
    group = GROUPS[group_by] if group_by else "NULL"
    # Only names from GROUPS and sql_filter reach the text; values are bound.
    where = f"ts >= ? AND ts < ? AND guardrails LIKE '%\"score\"%' AND {scope}"
    sql = f"SELECT {group} AS grp, guardrails FROM usage_events WHERE {where}"  # noqa: S608
    rows = await ledger.query(sql, [start, end, *scope_params])
    scores: dict[str | None, list[float]] = {}
    over: dict[str | None, int] = {}
    for row in rows:
        for verdict in orjson.loads(row["guardrails"]):
            score = verdict.get("score")
            if verdict.get("guardrail") != name or not isinstance(score, int | float):
                continue
            scores.setdefault(row["grp"], []).append(float(score))
            over[row["grp"]] = over.get(row["grp"], 0) + (verdict.get("count", 0) > 0)
    data = [
        {**({group_by: key} if group_by else {}), **summary(values, over[key])}
        for key, values in sorted(scores.items(), key=lambda item: (item[0] is None, item[0] or ""))
    ]
    return JSONResponse(
        {
            "object": "guardrail.scores",
            "guardrail": name,
            "from": iso(start),
            "to": iso(end),
            "group_by": [group_by] if group_by else [],
            "bins": [round(i / BINS, 1) for i in range(BINS + 1)],
            "data": data,
        }
    )


def summary(values: Sequence[float], over: int) -> dict[str, Any]:
    """Calls scored, calls at or over the threshold, quantiles (nearest rank), maximum, histogram."""
    ordered = sorted(values)
    n = len(ordered)
    histogram = [0] * BINS
    for v in ordered:
        histogram[min(int(v * BINS), BINS - 1)] += 1
    quantiles = {f"p{round(q * 100)}": ordered[min(n - 1, max(0, math.ceil(q * n) - 1))] for q in QUANTILES}
    return {"calls": n, "over_threshold": over, **quantiles, "max": ordered[-1], "histogram": histogram}
