"""Helpers shared by the guardrail tests: building sets, streaming a text through a StreamGuard."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from policies.guardrails import GuardrailSet, StreamGuard, parse_guardrails

# Realistic-looking but fake credentials (random characters, never issued).
OPENAI_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb3dEf6hIj9kLm2nOp5q"
GITHUB_TOKEN = "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngOnly123456"


def gset(guardrails: Mapping[str, Any], names: Iterable[str] | None = None, **options: Any) -> GuardrailSet:
    configs = parse_guardrails(guardrails)
    return GuardrailSet.from_config(configs, list(names or configs), **options)


def chunk(content: str | None = None, finish: str | None = None, index: int = 0, **delta: Any) -> dict[str, Any]:
    body: dict[str, Any] = dict(delta)
    if content is not None:
        body["content"] = content
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": body, "finish_reason": finish}],
    }


def completion(content: str, **message: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content, **message}, "finish_reason": "stop"}
        ],
    }


def run_stream(guard: StreamGuard, chunks: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], str | None]:
    """Feed the chunks, then finish: the chunks sent (before a block, if any) and the guardrail that blocked."""
    sent: list[dict[str, Any]] = []
    for c in chunks:
        step = guard.feed(c)
        if step.blocked_by:
            return sent, step.blocked_by
        sent.extend(step.chunks)
    step = asyncio.run(guard.finish())
    if step.blocked_by:
        return sent, step.blocked_by
    sent.extend(step.chunks)
    return sent, None


def content_of(chunks: Iterable[dict[str, Any]], index: int = 0) -> str:
    return "".join(
        c["delta"].get("content") or "" for ch in chunks for c in ch.get("choices") or () if c.get("index", 0) == index
    )


def args_of(chunks: Iterable[dict[str, Any]], call: int = 0) -> str:
    out = []
    for ch in chunks:
        for c in ch.get("choices") or ():
            for tc in c["delta"].get("tool_calls") or ():
                if tc.get("index", 0) == call:
                    out.append((tc.get("function") or {}).get("arguments") or "")
    return "".join(out)
