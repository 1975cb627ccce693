"""What the stand-in does for a request, chosen by the requested model name, plus the
deterministic text and token arithmetic both wire formats share. No HTTP here."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

SLOW_SECONDS = 5.0
STREAM_SLOW_CHUNKS = 20
STREAM_SLOW_DELAY = 0.2
LATE_END_SECONDS = 0.02  # stream-late-end: the pause between the last event and the end of the body
CACHE_READ_TOKENS = 100
CACHE_CREATION_TOKENS = 7
TOKENS_PER_MESSAGE = 3
CONTEXT_TOO_LONG = "<context too long>"  # asks the wire's error function for its context-length error

_FAIL = re.compile(r"fail-(\d{3})")
_FLAKY = re.compile(r"flaky-(\d{3})(?:-(\d+))?")
_SLOW = re.compile(r"slow-(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Scenario:
    """The scripted behaviour for one model name."""

    model: str
    fail_status: int | None = None
    fail_first: int | None = None  # flaky-*: only the first N requests for this model fail
    slow_seconds: float = 0.0
    not_json: bool = False
    stream_cut: bool = False
    stream_error: bool = False
    stream_slow: bool = False
    late_end: bool = False
    no_usage: bool = False
    echo: bool = False
    cache: bool = False
    too_long: bool = False  # "too-long": the provider's context-length error (a 400)
    leak_key: bool = False  # "leak-key": a 400 whose message echoes the key, a zero-width space inside
    counted: bool = False  # "counted*": prompt tokens as OpenAI counts them (o200k_base, the cookbook's format)
    judge: bool = False  # "judge*": answers as an LLM judge (see `judgement`)


def scenario_for(model: str) -> Scenario:
    cache = "cache" in model
    if match := _FAIL.fullmatch(model):
        return Scenario(model, fail_status=int(match[1]), cache=cache)
    if match := _FLAKY.fullmatch(model):
        return Scenario(model, fail_status=int(match[1]), fail_first=int(match[2] or 1), cache=cache)
    if model == "slow":
        return Scenario(model, slow_seconds=SLOW_SECONDS, cache=cache)
    if match := _SLOW.fullmatch(model):
        return Scenario(model, slow_seconds=float(match[1]), cache=cache)
    return Scenario(
        model,
        not_json=model == "not-json",
        stream_cut=model == "stream-cut",
        stream_error=model == "stream-error",
        stream_slow=model == "stream-slow",
        late_end=model == "stream-late-end",
        no_usage=model == "no-usage",
        echo=model == "echo-request",
        cache=cache,
        too_long=model == "too-long",
        leak_key=model == "leak-key",
        counted=model.startswith("counted"),
        judge=model.startswith("judge"),
    )


def word_count(text: str) -> int:
    return len(text.split())


def pieces(text: str) -> list[str]:
    """Word-sized pieces (each with its leading whitespace) that concatenate back to `text`."""
    return re.findall(r"\s*\S+\s*$|\s*\S+", text)


_SCORE = re.compile(r"SCORE=([01](?:\.\d+)?)")


def judgement(user_text: str) -> str:
    """A judge's reply: the score the text names last as SCORE=<0..1>, else 0 when it says WRONG, else 1."""
    named = _SCORE.findall(user_text)
    score = float(named[-1]) if named else 0.0 if "WRONG" in user_text else 1.0
    return orjson.dumps({"score": score, "pass": score >= 0.5, "reason": "stand-in judge"}).decode()


def reply_text(scenario: Scenario, user_text: str, body: dict[str, Any]) -> str:
    if scenario.echo:
        return orjson.dumps(body).decode()
    if scenario.judge:
        return judgement(user_text)
    text = f"Hello from stand-in {scenario.model}: {user_text}"
    if scenario.stream_slow:
        text += " tick" * max(0, STREAM_SLOW_CHUNKS - len(pieces(text)))
    return text


def truncate(text: str, limit: int | None) -> tuple[str, bool]:
    """Cut `text` to `limit` words; True when it was cut (finish reason length / max_tokens)."""
    if limit is None or word_count(text) <= limit:
        return text, False
    return "".join(pieces(text)[: max(limit, 0)]).rstrip(), True


def prompt_tokens(texts: Iterable[str]) -> int:
    """Words in every message (and system prompt) plus TOKENS_PER_MESSAGE for each."""
    return sum(word_count(text) + TOKENS_PER_MESSAGE for text in texts)


def tool_arguments(schema: Any) -> dict[str, Any]:
    """Arguments for a tool call generated from its JSON schema's `properties`."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return {}
    return {name: _example(spec) for name, spec in properties.items()}


def _example(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return "x"
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        return spec["enum"][0]
    kind = spec.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return tool_arguments(spec)
    return "x"


def compact_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def split_in_parts(text: str, parts: int = 3) -> list[str]:
    """Split `text` into at least `parts` non-empty pieces (fewer only if it is shorter)."""
    size = max(1, -(-len(text) // parts))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def tool_completion_tokens(name: str, arguments: str) -> int:
    return word_count(name) + word_count(arguments)


def openai_prompt_tokens(messages: Iterable[Any]) -> int:
    """OpenAI's count of chat messages (the cookbook's): 3 per message, its role and content, 1 and the
    name for a name, 3 to prime the reply; o200k_base."""
    import tiktoken

    encoding = tiktoken.get_encoding("o200k_base")
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            if isinstance(value, str) and key in ("role", "content", "name"):
                total += len(encoding.encode(value)) + (1 if key == "name" else 0)
    return total
