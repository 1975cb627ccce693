"""Chat completion -> Anthropic message: a pure translation, no I/O.

`from_chat_response` turns a whole `chat.completion` into a Messages API `message`; the stop
reason, usage and id mappings here are shared with the stream translation. A malformed
completion raises ValueError (the provider's answer is at fault, not the client's request).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from gateway.body_limits import too_deeply_nested
from gateway.metering.usage import Usage

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def map_finish_reason(finish_reason: Any, *, tool_calls: bool, stop_sequence: str | None = None) -> str:
    """Anthropic's `stop_reason` for a chat `finish_reason`.

    A message with tool calls stops for `tool_use` unless it was cut short or filtered (some
    servers say "stop" with tool calls), one without never does; a stop on a matched stop
    sequence is `stop_sequence`. Unknown or missing -> `end_turn`.
    """
    reason = _STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"
    if reason in ("end_turn", "tool_use"):
        if tool_calls:
            return "tool_use"
        return "stop_sequence" if stop_sequence is not None else "end_turn"
    return reason


def matched_stop_sequence(choice: dict[str, Any]) -> str | None:
    """The stop sequence that ended the choice, when the server says (vLLM's `stop_reason` string);
    OpenAI does not tell, so its stops read as `end_turn`."""
    matched = choice.get("stop_reason")
    return matched if isinstance(matched, str) and matched else None


def usage_to_anthropic(usage: Usage) -> dict[str, int]:
    """Anthropic's usage counts for the gateway's usage: `input_tokens` leaves out cache reads and writes."""
    fresh = usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens
    return {
        "input_tokens": max(fresh, 0),
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


def message_id_from(chat_id: Any) -> str:
    """A `msg_` id derived from the chat completion's id, or a fresh one when it has none."""
    if isinstance(chat_id, str) and chat_id:
        return f"msg_{chat_id.removeprefix('chatcmpl-')}"
    return f"msg_{uuid.uuid4().hex[:24]}"


def tool_use_id(message_id: str, k: int) -> str:
    """An id for the message's `k`th tool call when the server gave it none (stable, unique per message)."""
    return f"toolu_{message_id.removeprefix('msg_')}_{k}"


def tool_input(arguments: Any) -> dict[str, Any]:
    """A tool call's `arguments` JSON text as the tool_use `input` object.

    Empty, unparseable, non-object or too deeply nested arguments give `{}`: the client's tool then reports the
    missing parameters to the model, which can try again, rather than the whole answer failing.
    """
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) and not too_deeply_nested(parsed) else {}


def from_chat_response(
    data: dict[str, Any], *, model: str, message_id: str | None = None, usage: Usage | None = None
) -> dict[str, Any]:
    """Translate a whole chat completion into an Anthropic `message`.

    `model` is the name the client asked for; `message_id` replaces the id derived from the
    completion's; `usage` (the gateway's final count) replaces the completion's own `usage`.
    The content is the text first, then one `tool_use` block per tool call; an OpenAI `refusal`
    becomes the text and stops for `refusal`. Raises ValueError for a malformed completion.
    """
    message_id = message_id or message_id_from(data.get("id"))
    choice = _first_choice(data.get("choices"))
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ValueError("the chat completion's choice has no message")
    refusal = message.get("refusal")
    refusal = refusal if isinstance(refusal, str) else ""
    text = _message_text(message) + refusal
    tool_uses = [_tool_use(call, message_id, k) for k, call in enumerate(_list(message.get("tool_calls")))]
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += tool_uses

    stop_sequence = matched_stop_sequence(choice)
    finish_reason = "content_filter" if refusal else choice.get("finish_reason")
    stop_reason = map_finish_reason(finish_reason, tool_calls=bool(tool_uses), stop_sequence=stop_sequence)
    final_usage = usage or Usage.from_openai(data.get("usage")) or Usage()
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence if stop_reason == "stop_sequence" else None,
        "usage": usage_to_anthropic(final_usage),
    }


def _first_choice(choices: Any) -> dict[str, Any]:
    for choice in _list(choices):
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    raise ValueError("the chat completion has no choice 0")


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("the chat completion has a malformed list")
    return value


def _message_text(message: dict[str, Any]) -> str:
    """The message's content as text: a string, or (some servers) a list of text parts."""
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or ""
    parts = _list(content)
    return "".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))


def _tool_use(call: Any, message_id: str, k: int) -> dict[str, Any]:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise ValueError("the chat completion has a malformed tool call")
    function = call["function"]
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError("the chat completion has a tool call without a name")
    call_id = call.get("id")
    return {
        "type": "tool_use",
        "id": call_id if isinstance(call_id, str) and call_id else tool_use_id(message_id, k),
        "name": name,
        "input": tool_input(function.get("arguments")),
    }
