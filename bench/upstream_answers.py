"""What bench/static_upstream.py answers: one call of each API, whole and streamed, as the real APIs
send it (checked against the official SDKs' models in tests/test_static_upstream.py).

Every answer says the same text with the same usage (14 input tokens, 11 output). Streams are
lists of server-sent events, split into the events sent at once and the ones sent a moment later;
the HTTP framing is the server's job.
"""

from __future__ import annotations

import json
from typing import Any

TEXT = "Hello! I hope you are having a wonderful day."
WORDS = ["Hello!", " I", " hope", " you", " are", " having", " a", " wonderful", " day", "."]
INPUT_TOKENS, OUTPUT_TOKENS = 14, 11
CREATED = 1_730_000_000

Stream = tuple[list[bytes], list[bytes]]  # the events sent at once, the events sent a moment later

# --------------------------------------------------------------------------- Chat Completions

CHAT_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-bench0000000000000000000000001",
    "object": "chat.completion",
    "created": CREATED,
    "model": "gpt-4o-mini-2024-07-18",
    "system_fingerprint": "fp_bench000001",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": TEXT, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": INPUT_TOKENS,
        "completion_tokens": OUTPUT_TOKENS,
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
}


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def sse(payload: dict[str, Any], name: str | None = None) -> bytes:
    """One server-sent event; named (`event:` line) as the Responses and Messages APIs send them."""
    head = b"event: " + name.encode() + b"\n" if name else b""
    return head + b"data: " + encode(payload) + b"\n\n"


def chat_stream(include_usage: bool) -> Stream:
    """`chat.completion.chunk`s: the role chunk, one per word, the finish, the usage chunk when asked."""
    base = {
        "id": CHAT_COMPLETION["id"],
        "object": "chat.completion.chunk",
        "created": CHAT_COMPLETION["created"],
        "model": CHAT_COMPLETION["model"],
        "system_fingerprint": CHAT_COMPLETION["system_fingerprint"],
    }
    extra: dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**base, "choices": [choice], **extra})

    later = [chunk({"content": word}) for word in WORDS] + [chunk({}, "stop")]
    if include_usage:
        later.append(sse({**base, "choices": [], "usage": CHAT_COMPLETION["usage"]}))
    return [chunk({"role": "assistant", "content": ""})], [*later, b"data: [DONE]\n\n"]


# --------------------------------------------------------------------------- Responses

_OUTPUT_TEXT = {"type": "output_text", "text": TEXT, "annotations": [], "logprobs": []}
_MESSAGE_ITEM = {
    "id": "msg_bench0000000000000000000000000001",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [_OUTPUT_TEXT],
}
RESPONSE: dict[str, Any] = {
    "id": "resp_bench0000000000000000000000000001",
    "object": "response",
    "created_at": CREATED,
    "status": "completed",
    "completed_at": CREATED + 1,
    "background": False,
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "max_output_tokens": None,
    "model": "gpt-4o-mini-2024-07-18",
    "output": [_MESSAGE_ITEM],
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None},
    "service_tier": "default",
    "store": True,
    "temperature": 1.0,
    "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "truncation": "disabled",
    "usage": {
        "input_tokens": INPUT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": OUTPUT_TOKENS,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
    },
    "user": None,
    "metadata": {},
}


def responses_stream() -> Stream:
    """The semantic events of RESPONSE in OpenAI's order, numbered by `sequence_number`."""
    opening = {**RESPONSE, "status": "in_progress", "completed_at": None, "output": [], "usage": None}
    at = {"item_id": _MESSAGE_ITEM["id"], "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": opening},
        {"type": "response.in_progress", "response": opening},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**_MESSAGE_ITEM, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **at, "part": {**_OUTPUT_TEXT, "text": ""}},
        *({"type": "response.output_text.delta", **at, "delta": word, "logprobs": []} for word in WORDS),
        {"type": "response.output_text.done", **at, "text": TEXT, "logprobs": []},
        {"type": "response.content_part.done", **at, "part": _OUTPUT_TEXT},
        {"type": "response.output_item.done", "output_index": 0, "item": _MESSAGE_ITEM},
        {"type": "response.completed", "response": RESPONSE},
    ]
    framed = [sse({**event, "sequence_number": n}, event["type"]) for n, event in enumerate(events)]
    return framed[:2], framed[2:]


# --------------------------------------------------------------------------- Anthropic Messages

MESSAGE: dict[str, Any] = {
    "id": "msg_bench01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": TEXT}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {
        "input_tokens": INPUT_TOKENS,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": OUTPUT_TOKENS,
        "service_tier": "standard",
    },
}


def messages_stream() -> Stream:
    """MESSAGE as Anthropic streams it: usage opens in `message_start`, ends in `message_delta`."""
    start = {**MESSAGE, "content": [], "stop_reason": None, "usage": {**MESSAGE["usage"], "output_tokens": 1}}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        *({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}} for w in WORDS),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": OUTPUT_TOKENS},
        },
        {"type": "message_stop"},
    ]
    framed = [sse(event, event["type"]) for event in events]
    return framed[:3], framed[3:]
