"""The client APIs the guardrails understand natively, by name: `chat` (OpenAI Chat Completions),
`responses` (OpenAI Responses) and `messages` (Anthropic Messages). Bodies, responses and stream
events are read and rewritten in the client's own shape; nothing is translated."""

from __future__ import annotations

from policies.guardrails.shapes import responses
from policies.guardrails.shapes.base import Api, Codec, Shape
from policies.guardrails.shapes.chat import CHAT
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
}


def shape(api: str) -> Shape:
    """The shape of one API; a `ValueError` for a name that is none of `Api`."""
    found = SHAPES.get(api)
    if found is None:
        raise ValueError(f"unknown api {api!r}: expected one of {', '.join(SHAPES)}")
    return found


__all__ = ["SHAPES", "Api", "Codec", "Shape", "shape"]
