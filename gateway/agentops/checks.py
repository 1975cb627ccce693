"""The checks an eval case's answer is scored with. Pure, but for `judge`, which asks a judge model
through a function the runner gives it.

    {"type": "exact", "value": "Paris"}                       the answer's text, trimmed, is exactly it
    {"type": "contains", "value": "Paris", "case_sensitive": false}
    {"type": "regex", "pattern": "\\bParis\\b"}               re.search
    {"type": "json_schema", "schema": {...}}                  the text is JSON valid against the schema
    {"type": "tool_call", "name": "book", "arguments": {"city": "Paris"}}
                                                              a call of that tool whose arguments hold these
    {"type": "judge", "rubric": "...", "model": "...", "threshold": 0.5}
                                                              a judge model's score reaches the threshold

A case passes when every one of its checks does; its score is their mean (1 or 0 for the others, the
judge's score for a judge).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import jsonschema
import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from gateway.agentops import judge


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Exact(_Check):
    type: Literal["exact"]
    value: str


class Contains(_Check):
    type: Literal["contains"]
    value: str = Field(min_length=1)
    case_sensitive: bool = False


class Regex(_Check):
    type: Literal["regex"]
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc})") from None
        return pattern


class JsonSchema(_Check):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")

    @field_validator("schema_")
    @classmethod
    def _valid(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON schema ({exc.message})") from None
        return schema


class ToolCall(_Check):
    type: Literal["tool_call"]
    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class Judge(_Check):
    type: Literal["judge"]
    rubric: str = Field(min_length=1, max_length=8000)
    model: str | None = None  # default: the run's --judge
    threshold: float = Field(default=judge.PASS_SCORE, ge=0, le=1)


Check = Annotated[Exact | Contains | Regex | JsonSchema | ToolCall | Judge, Field(discriminator="type")]
CHECKS: TypeAdapter[list[Check]] = TypeAdapter(list[Check])


@dataclass(frozen=True, slots=True)
class Answer:
    """What a case's call answered: its text and the tool calls it made (name, parsed arguments)."""

    text: str
    tool_calls: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, completion: Mapping[str, Any]) -> Answer:
        choices = completion.get("choices")
        message = choices[0].get("message") if isinstance(choices, list) and choices else None
        if not isinstance(message, dict):
            return cls("")
        calls = []
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                raw = function.get("arguments")
                try:
                    arguments = orjson.loads(raw) if isinstance(raw, str) else raw
                except orjson.JSONDecodeError:
                    arguments = raw
                calls.append((str(function.get("name")), arguments))
        content = message.get("content")
        return cls(content if isinstance(content, str) else "", tuple(calls))


@dataclass(frozen=True, slots=True)
class Result:
    check: str  # how it reads: `contains 'Paris'`
    passed: bool
    score: float
    detail: str = ""
    judged: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"check": self.check, "passed": self.passed, "score": self.score}
        if self.detail:
            out["detail"] = self.detail
        return out


JudgeFn = Callable[[Judge, str], Awaitable[judge.Judgement]]
"""Ask the judge: the check, and the answer's text in context (built by the runner)."""


def describe(check: Check) -> str:
    if isinstance(check, Exact | Contains):
        return f"{check.type} {check.value[:60]!r}"
    if isinstance(check, Regex):
        return f"regex {check.pattern[:60]!r}"
    if isinstance(check, ToolCall):
        return f"tool_call {check.name}"
    if isinstance(check, Judge):
        return f"judge {check.rubric[:60]!r}"
    return "json_schema"


async def run(checks: Sequence[Check], answer: Answer, ask_judge: JudgeFn | None) -> list[Result]:
    return [await _one(check, answer, ask_judge) for check in checks]


async def _one(check: Check, answer: Answer, ask_judge: JudgeFn | None) -> Result:
    name = describe(check)
    text = answer.text
    if isinstance(check, Exact):
        ok = text.strip() == check.value.strip()
        return _binary(name, ok, "" if ok else f"answered {text.strip()[:80]!r}")
    if isinstance(check, Contains):
        found = check.value in text if check.case_sensitive else check.value.casefold() in text.casefold()
        return _binary(name, found, "" if found else "not in the answer")
    if isinstance(check, Regex):
        ok = re.search(check.pattern, text) is not None
        return _binary(name, ok, "" if ok else "no match in the answer")
    if isinstance(check, JsonSchema):
        return _binary(name, *_schema(check.schema_, text))
    if isinstance(check, ToolCall):
        return _binary(name, *_tool_call(check, answer.tool_calls))
    if ask_judge is None:
        return Result(name, False, 0.0, "no judge model (give --judge MODEL or the check's `model`)")
    judged = await ask_judge(check, text)
    ok = judged.score >= check.threshold
    return Result(name, ok, judged.score, judged.reason, judged.as_dict())


def _binary(name: str, passed: bool, detail: str = "") -> Result:
    return Result(name, passed, 1.0 if passed else 0.0, detail)


def _schema(schema: dict[str, Any], text: str) -> tuple[bool, str]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False, "the answer is not JSON"
    errors = sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(value), key=str)
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
        return False, f"{where}: {errors[0].message[:160]}"
    return True, ""


def _tool_call(check: ToolCall, calls: Sequence[tuple[str, Any]]) -> tuple[bool, str]:
    named = [arguments for name, arguments in calls if name == check.name]
    if not named:
        made = ", ".join(name for name, _ in calls) or "none"
        return False, f"no call of {check.name} (calls: {made})"
    if any(holds(arguments, check.arguments) for arguments in named):
        return True, ""
    return False, f"{check.name} was called with {orjson.dumps(named[0]).decode()[:160]}"


def holds(actual: Any, expected: Any) -> bool:
    """Whether `actual` holds `expected`: equal values, objects with at least these keys (recursively),
    lists with these items in order."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and holds(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(holds, actual, expected))
    return bool(actual == expected)
