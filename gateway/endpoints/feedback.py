"""POST /v1/feedback and GET /v1/feedback/export: production failures become eval cases.

Feedback (a score, a label, a comment) attaches to one call, a whole session or a whole task. The
export writes every call that has feedback, with its captured messages when content capture is
on, as JSONL: one eval case per line.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from gateway.endpoints.intake import identify, read_json, runtime_of
from gateway.endpoints.scope import feedback_filter, sql_filter
from gateway.endpoints.sessions import require_ledger
from gateway.errors import InvalidRequest, NotFound
from gateway.metering.report import iso, parse_time
from gateway.schemas import validate

MAX_BODY = 64 * 1024


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    request_id: str | None = Field(default=None, min_length=1, max_length=128)
    session_id: str | None = Field(default=None, min_length=1, max_length=128)
    task_id: str | None = Field(default=None, min_length=1, max_length=128)
    score: float | None = None
    label: str | None = Field(default=None, min_length=1, max_length=64)
    comment: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _one_target_and_something_to_say(self) -> FeedbackIn:
        targets = [t for t in (self.request_id, self.session_id, self.task_id) if t is not None]
        if len(targets) != 1:
            raise ValueError("give exactly one of request_id, session_id, task_id")
        if self.score is None and self.label is None and self.comment is None:
            raise ValueError("give a score, a label or a comment")
        return self


_TARGETS = {"request_id": "request_id", "session_id": "session", "task_id": "task"}
_EXPORT = (
    "SELECT e.request_id, e.ts, e.requested_model, e.model, e.provider, e.team, e.agent, e.task, e.session, "
    "e.status, e.outcome, e.agent_version, c.input_messages, c.output_messages, f.score, f.label, f.comment, "
    "f.request_id AS on_request, f.session AS on_session, f.task AS on_task "
    "FROM feedback f CROSS JOIN usage_events e LEFT JOIN call_content c ON c.request_id = e.request_id "
    "WHERE e.team = f.team AND (e.request_id = f.request_id OR e.session = f.session OR e.task = f.task) "
    "AND e.ts >= ? AND e.ts < ? AND {scope} AND {feedback_scope}"  # CROSS JOIN: SQLite starts from the feedback
)


async def post_feedback(request: Request) -> JSONResponse:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    feedback = validate(FeedbackIn, await read_json(request, MAX_BODY))
    ledger = require_ledger(runtime.services.ledger)
    await ledger.settle()
    field, value = next((f, v) for f in _TARGETS if (v := getattr(feedback, f)) is not None)
    column = _TARGETS[field]
    scope, params = sql_filter(ctx.principal)
    teams = await ledger.query(
        f"SELECT DISTINCT team FROM usage_events WHERE {column} = ? AND {scope}",  # noqa: S608 - names from a table
        [value, *params],
    )
    if not teams:
        raise NotFound(f"No call with {field} '{value}' that this key may see.", param=field)
    # Session and task ids are the callers' own, so two teams may use the same one: feedback is filed
    # per team, and only ever joins that team's calls.
    target = {"request_id": None, "session": None, "task": None, column: value}
    feedback_id = 0
    for row in teams:
        feedback_id = await ledger.insert(
            "INSERT INTO feedback (ts, key_name, team, request_id, session, task, score, label, comment) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [time.time(), ctx.key_name, row["team"], target["request_id"], target["session"], target["task"],
             feedback.score, feedback.label, feedback.comment],
        )  # fmt: skip
    body = {
        "object": "feedback",
        "id": feedback_id,
        field: value,
        "score": feedback.score,
        "label": feedback.label,
        "comment": feedback.comment,
    }
    return JSONResponse(body, status_code=201)


async def export_feedback(request: Request) -> StreamingResponse:
    runtime = runtime_of(request)
    ctx = identify(request, runtime)
    params = request.query_params
    unknown = sorted(set(params) - {"label", "from", "to"})
    if unknown:
        raise InvalidRequest(f"Unknown parameter '{unknown[0]}'; use label, from, to.", param=unknown[0])
    now = time.time()
    start = parse_time(params["from"], "from", now) if params.get("from") else 0.0
    end = parse_time(params["to"], "to", now) if params.get("to") else now + 1
    ledger = require_ledger(runtime.services.ledger)
    await ledger.settle()
    scope, scope_params = sql_filter(ctx.principal, "e")
    feedback_scope, feedback_params = feedback_filter(ctx.principal, "f")
    sql = _EXPORT.format(scope=scope, feedback_scope=feedback_scope)  # built from constants; values are bound
    values: list[Any] = [start, end, *scope_params, *feedback_params]
    if params.get("label"):
        sql += " AND f.label = ?"
        values.append(params["label"])
    rows = await ledger.query(sql + " ORDER BY e.ts, e.id, f.id", values)
    return StreamingResponse(_jsonl(rows), media_type="application/x-ndjson")


async def _jsonl(rows: list[Any]) -> AsyncIterator[bytes]:
    cases: dict[str, dict[str, Any]] = {}
    for row in rows:
        case = cases.get(row["request_id"])
        if case is None:
            case = cases[row["request_id"]] = {
                "request_id": row["request_id"],
                "time": iso(row["ts"]),
                "requested_model": row["requested_model"],
                "model": row["model"],
                "provider": row["provider"],
                "team": row["team"],
                "agent": row["agent"],
                "agent_version": row["agent_version"],
                "task": row["task"],
                "session": row["session"],
                "status": row["status"],
                "outcome": row["outcome"],
                "input": orjson.loads(row["input_messages"]) if row["input_messages"] else None,
                "output": orjson.loads(row["output_messages"]) if row["output_messages"] else None,
                "feedback": [],
            }
        on = "request" if row["on_request"] else "session" if row["on_session"] else "task"
        case["feedback"].append({"on": on, "score": row["score"], "label": row["label"], "comment": row["comment"]})
    for case in cases.values():
        case["labels"] = sorted({f["label"] for f in case["feedback"] if f["label"]})
        yield orjson.dumps(case) + b"\n"
