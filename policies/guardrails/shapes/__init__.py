"""The client APIs the guardrails understand natively, by name: `chat` (OpenAI Chat Completions),
`responses` (OpenAI Responses) and `messages` (Anthropic Messages). Bodies, responses and stream
events are read and rewritten in the client's own shape; nothing is translated."""

from __future__ import annotations

from typing import get_args

from policies.guardrails.shapes import messages, responses
from policies.guardrails.shapes.base import Api, Codec, Shape
from policies.guardrails.shapes.chat import CHAT
from policies.guardrails.shapes.messages_stream import MessagesCodec
from policies.guardrails.shapes.responses_stream import ResponsesCodec

SHAPES: dict[str, Shape] = {
    "chat": CHAT,
    "responses": Shape(
        responses.request_slots,
        responses.request_tool_names,
        responses.response_slots,
        responses.response_tool_names,
        responses.redaction_extras,
        ResponsesCodec,
        repeats_texts=True,
    ),
    "messages": Shape(
        messages.request_slots,
        messages.request_tool_names,
        messages.response_slots,
        messages.response_tool_names,
        messages.no_extras,
        MessagesCodec,
    ),
}
assert set(SHAPES) == set(get_args(Api))


def shape(api: str) -> Shape:
    """The shape of one API; a `ValueError` for a name that is none of `Api`."""
    found = SHAPES.get(api)
    if found is None:
        raise ValueError(f"unknown api {api!r}: expected one of {', '.join(SHAPES)}")
    return found


__all__ = ["SHAPES", "Api", "Codec", "Shape", "shape"]
