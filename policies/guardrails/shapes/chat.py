"""OpenAI Chat Completions: the walkers of `policies.guardrails.messages` and the chunk codec."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from policies.guardrails.messages import (
    Path,
    request_slots,
    request_tool_names,
    response_slots,
    response_tool_names,
)
from policies.guardrails.shapes.base import Shape
from policies.guardrails.shapes.chat_stream import ChatCodec


def redaction_extras(data: Mapping[str, Any], edited: Iterable[Path]) -> dict[Path, Any]:
    """A redacted choice loses its `logprobs` (they would spell out what was redacted)."""
    extras: dict[Path, Any] = {}
    for path in edited:
        choice = data["choices"][path[1]]
        if choice.get("logprobs") is not None:
            extras[("choices", path[1], "logprobs")] = None
    return extras


CHAT = Shape(request_slots, request_tool_names, response_slots, response_tool_names, redaction_extras, ChatCodec)
