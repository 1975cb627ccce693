"""LLM-as-judge: the request a judge model gets (a rubric, the conversation, the answer) and how its
reply is read. Pure: the online evaluator and `agentgw eval run` send the request through the gateway
like any call.

The judge is asked for a JSON object `{"score": 0..1, "pass": true|false, "reason": "..."}`, by a JSON
schema when the model supports structured output, else by the instructions alone; a reply that is
not such an object but says PASS or FAIL is read as 1 or 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "pass": {"type": "boolean"},
        "reason": {"type": "string"},
    },
    "required": ["score", "pass", "reason"],
    "additionalProperties": False,
}
SYSTEM = (
    "You evaluate one answer of an AI agent. Read the rubric, the conversation and the answer. Reply with only "
    'a JSON object: {"score": <a number from 0 (fails the rubric) to 1 (meets it fully)>, "pass": <true or '
    'false>, "reason": "<one short sentence>"}.'
)
PASS_SCORE = 0.5
_OBJECT = re.compile(r"\{.*\}", re.S)
_VERDICT = re.compile(r"\b(PASS|FAIL)\b")


class Unreadable(ValueError):
    """The judge's reply says nothing that can be read as a score."""


@dataclass(frozen=True, slots=True)
class Judgement:
    score: float
    passed: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "pass": self.passed, "reason": self.reason}


def transcript(messages: Sequence[Any], max_chars: int) -> str:
    """Chat messages as `role: text` lines, the newest kept when it is too long."""
    lines = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role") or "user")
        lines.append(f"{role}: {_text(message)}")
    text = "\n".join(lines)
    return text if len(text) <= max_chars else "..." + text[-max_chars:]


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    parts: list[str] = []
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        parts += [str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p]
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.append(f"[calls {function.get('name')}({function.get('arguments')})]")
    return " ".join(parts)


def request(
    model: str, rubric: str, conversation: str, answer: str, *, structured: bool = True, max_chars: int = 8000
) -> dict[str, Any]:
    """The chat request a judge model receives."""
    answer = answer if len(answer) <= max_chars else answer[:max_chars] + "..."
    user = f"Rubric:\n{rubric}\n\nConversation:\n{conversation}\n\nAnswer to evaluate:\n{answer}"
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
        "temperature": 0,
    }
    if structured:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "judgement", "schema": SCHEMA, "strict": True},
        }
    return body


def parse(text: str) -> Judgement:
    """The judgement in a judge's reply; `Unreadable` when there is none."""
    found = _OBJECT.search(text)
    if found is not None:
        try:
            data = orjson.loads(found.group(0))
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            judged = _from_object(data)
            if judged is not None:
                return judged
    verdict = _VERDICT.findall(text.upper())
    if verdict:
        passed = verdict[-1] == "PASS"
        return Judgement(1.0 if passed else 0.0, passed, text.strip()[:500])
    raise Unreadable(f"the judge's reply holds no score: {text[:200]!r}")


def _from_object(data: Mapping[str, Any]) -> Judgement | None:
    score, passed = data.get("score"), data.get("pass")
    if isinstance(score, bool) or not isinstance(score, int | float):
        score = None if not isinstance(passed, bool) else float(passed)
    if score is None:
        return None
    score = min(1.0, max(0.0, float(score)))
    if not isinstance(passed, bool):
        passed = score >= PASS_SCORE
    return Judgement(score, passed, str(data.get("reason") or "")[:500])


def answer_text(data: Mapping[str, Any]) -> str:
    """The text of a chat completion's first choice (the judge's reply, or a case's answer)."""
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    message = choices[0].get("message")
    return _text(message) if isinstance(message, dict) else ""
