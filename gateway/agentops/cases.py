"""Eval cases from a JSONL file, in either of two forms (one case per line):

The feedback export's (`GET /v1/feedback/export`): a production call someone flagged, with its
captured `input` messages (the OpenTelemetry GenAI shape: a role and parts), the `output` it gave,
and its `feedback` (labels, scores, comments). Unless the line also says what to expect, it is
judged: a judge model is told what the reviewer flagged and what the old answer was, and passes
the new answer only if it no longer has that problem.

The simple form: `{"input": "a question" | [chat messages], "expected": "..."}`, optionally with
`"system"`, `"tools"`, `"id"` and `"checks"` (see `gateway.agentops.checks`); `expected` alone is a
`contains` check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from gateway.agentops.checks import CHECKS, Check, Contains, Judge


class CaseError(ValueError):
    """A line that is not a case; the message names it."""


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    messages: list[dict[str, Any]]
    checks: list[Check]
    tools: list[dict[str, Any]] | None = None
    line: int = 0
    agent: str | None = None
    labels: list[str] = field(default_factory=list)


def load(
    path: str | Path, *, judge_available: bool, system: str | None = None, tools: list[Any] | None = None
) -> list[Case]:
    """Every case of a JSONL file (blank lines skipped). `system` replaces each case's system prompt
    and `tools` its tools: a candidate prompt or tool set evaluated on the same cases."""
    text = Path(path).read_text()
    return list(parse(text.splitlines(), judge_available=judge_available, system=system, tools=tools))


def parse(
    lines: Iterable[str], *, judge_available: bool, system: str | None = None, tools: list[Any] | None = None
) -> Iterable[Case]:
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise CaseError(f"line {number}: not JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise CaseError(f"line {number}: a case is a JSON object")
        case = _case(raw, number, judge_available)
        if system is not None:
            case = _with_system(case, system)
        if tools is not None:
            case = Case(case.id, case.messages, case.checks, tools, case.line, case.agent, case.labels)
        if case.id in seen:
            raise CaseError(f"line {number}: the id {case.id!r} is used by an earlier case")
        seen.add(case.id)
        yield case


def _case(raw: dict[str, Any], number: int, judge_available: bool) -> Case:
    exported = "feedback" in raw or _is_captured(raw.get("input"))
    case_id = str(raw.get("id") or raw.get("request_id") or f"line-{number}")
    try:
        checks = CHECKS.validate_python(raw.get("checks") or [])
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise CaseError(f"line {number}: checks.{where}: {error['msg']}") from None
    expected = raw.get("expected")
    if expected is not None:
        if not isinstance(expected, str) or not expected:
            raise CaseError(f"line {number}: `expected` is a non-empty string")
        checks.append(Contains(type="contains", value=expected))
    messages = _captured(raw.get("input"), number) if exported else _simple(raw, number)
    if not checks and exported:
        if not judge_available:
            raise CaseError(
                f"line {number}: an exported case with no `expected` or `checks` is judged against its feedback: "
                "give --judge MODEL"
            )
        checks.append(Judge(type="judge", rubric=_feedback_rubric(raw)))
    if not checks:
        raise CaseError(f"line {number}: give `expected` or `checks`")
    tools = raw.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise CaseError(f"line {number}: `tools` is a list")
    labels = raw.get("labels")
    return Case(
        case_id, messages, checks, tools, number, raw.get("agent") if isinstance(raw.get("agent"), str) else None,
        [str(label) for label in labels] if isinstance(labels, list) else [],
    )  # fmt: skip


def _simple(raw: dict[str, Any], number: int) -> list[dict[str, Any]]:
    value = raw.get("input")
    if isinstance(value, str) and value:
        messages: list[dict[str, Any]] = [{"role": "user", "content": value}]
    elif isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        messages = [dict(m) for m in value]
    else:
        raise CaseError(f"line {number}: `input` is a question or a list of chat messages")
    system = raw.get("system")
    if isinstance(system, str):
        messages = [{"role": "system", "content": system}, *messages]
    return messages


def _is_captured(value: Any) -> bool:
    return isinstance(value, list) and any(isinstance(m, dict) and "parts" in m for m in value)


def _captured(value: Any, number: int) -> list[dict[str, Any]]:
    """Captured messages (the GenAI conventions' shape) as chat messages."""
    if not isinstance(value, list) or not value:
        raise CaseError(
            f"line {number}: the call's messages were not captured (telemetry.capture_content was off when it ran)"
        )
    out: list[dict[str, Any]] = []
    for message in value:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role") or "user")
        found = message.get("parts")
        parts: list[Any] = found if isinstance(found, list) else []
        texts = [str(p.get("content", "")) for p in parts if isinstance(p, dict) and p.get("type") == "text"]
        calls = [p for p in parts if isinstance(p, dict) and p.get("type") == "tool_call"]
        responses = [p for p in parts if isinstance(p, dict) and p.get("type") == "tool_call_response"]
        if role == "tool" and responses:
            for part in responses:
                response = part.get("response")
                content = response if isinstance(response, str) else orjson.dumps(response).decode()
                out.append({"role": "tool", "tool_call_id": part.get("id"), "content": content})
            continue
        converted: dict[str, Any] = {"role": role, "content": "\n".join(texts) if texts else None}
        if calls:
            converted["tool_calls"] = [
                {"id": c.get("id"), "type": "function",
                 "function": {"name": c.get("name"), "arguments": c.get("arguments") or "{}"}}
                for c in calls
            ]  # fmt: skip
        elif converted["content"] is None:
            converted["content"] = ""
        out.append(converted)
    if not out:
        raise CaseError(f"line {number}: no messages in `input`")
    return out


def _feedback_rubric(raw: dict[str, Any]) -> str:
    """What the reviewer said about the old answer, as a rubric for the new one."""
    notes = []
    for item in raw.get("feedback") or ():
        if not isinstance(item, dict):
            continue
        said = [f"label {item['label']!r}" if item.get("label") else "", item.get("comment") or ""]
        if item.get("score") is not None:
            said.append(f"score {item['score']}")
        notes.append("; ".join(s for s in said if s))
    old = _output_text(raw.get("output"))
    rubric = "A reviewer flagged an earlier answer to this conversation"
    rubric += f" ({' | '.join(n for n in notes if n)})." if any(notes) else "."
    if old:
        rubric += f" The earlier answer was: {old[:2000]!r}."
    return rubric + " Pass the new answer only if it does not have the problem the reviewer flagged and answers well."


def _output_text(value: Any) -> str:
    if not isinstance(value, list):
        return ""
    parts = [p for m in value if isinstance(m, dict) for p in (m.get("parts") or ()) if isinstance(p, dict)]
    return " ".join(str(p.get("content", "")) for p in parts if p.get("type") == "text")


def _with_system(case: Case, system: str) -> Case:
    kept = [m for m in case.messages if m.get("role") not in ("system", "developer")]
    messages = [{"role": "system", "content": system}, *kept]
    return Case(case.id, messages, case.checks, case.tools, case.line, case.agent, case.labels)


def tools_of(value: Sequence[Any]) -> list[dict[str, Any]]:
    """Tools given on the command line (`--tools FILE`: a JSON list in chat's shape)."""
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise CaseError("--tools: a JSON list of tools in Chat Completions' shape")
    return list(value)
