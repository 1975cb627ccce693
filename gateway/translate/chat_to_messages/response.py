"""Anthropic Messages response -> OpenAI chat completion: a pure translation, no I/O.

`from_anthropic_response` handles a whole message; `StreamTranslator` turns Anthropic's named
stream events into `chat.completion.chunk` dicts one event at a time. Both take `json_tool`, the
name `to_anthropic_request` stored under `JSON_TOOL_KEY` for a `json_schema` response format:
that tool's input is returned as the message content rather than as a tool call.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.metering.usage import Usage

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def map_stop_reason(reason: str | None) -> str:
    """OpenAI's finish_reason for an Anthropic stop_reason; unknown or missing -> "stop"."""
    return _STOP_REASONS.get(reason or "", "stop")


def usage_from_anthropic(usage: dict[str, Any]) -> Usage:
    """The gateway's usage for Anthropic's `usage` object (see `Usage.from_anthropic`)."""
    return Usage.from_anthropic(usage)


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    """`data[key]` when it is an object, {} when absent; ValueError when it is anything else."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"Anthropic stream event has a malformed '{key}'")
    return value


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def from_anthropic_response(
    data: dict[str, Any], *, created: int, json_tool: str | None = None
) -> tuple[dict[str, Any], Usage]:
    """Translate a whole Anthropic message into an OpenAI `chat.completion` and its usage.

    Text blocks are concatenated into the content, `tool_use` blocks become `tool_calls`, and
    thinking blocks are left out. With `json_tool`, that tool's input becomes the content (as
    JSON text) and the call finishes with "stop". Raises ValueError for a malformed message.
    """
    content = data.get("content")
    if not isinstance(content, list):
        raise ValueError("Anthropic message has no content list")
    message_id, model = data.get("id"), data.get("model")
    if not isinstance(message_id, str) or not isinstance(model, str):
        raise ValueError("Anthropic message lacks its id or model")

    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    json_text: str | None = None
    for block in content:
        if not isinstance(block, dict):
            raise ValueError("Anthropic content block is not an object")
        if block.get("type") == "text":
            if not isinstance(block.get("text"), str):
                raise ValueError("Anthropic text block has no text")
            texts.append(block["text"])
        elif block.get("type") == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise ValueError("Anthropic tool_use block lacks its id or name")
            if json_tool is not None and block["name"] == json_tool and json_text is None:
                json_text = _json(block.get("input", {}))
                continue
            tool_calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": _json(block.get("input", {}))},
                }
            )

    finish_reason = map_stop_reason(data.get("stop_reason"))
    if json_text is not None and finish_reason == "tool_calls" and not tool_calls:
        finish_reason = "stop"
    message: dict[str, Any] = {
        "role": "assistant",
        "content": json_text if json_text is not None else ("".join(texts) if texts else None),
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    raw_usage = data.get("usage")
    usage = usage_from_anthropic(raw_usage if isinstance(raw_usage, dict) else {})
    completion = {
        "id": message_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": usage.to_openai(),
    }
    return completion, usage


class AnthropicStreamError(Exception):
    """An `error` event in an Anthropic stream (e.g. `overloaded_error` after the 200)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


class StreamTranslator:
    """Turns Anthropic stream events into OpenAI `chat.completion.chunk` dicts.

    Feed every event in order; each call returns the chunks to send (often none). With
    `include_usage` every chunk carries `"usage": None` and `message_stop` adds a last chunk
    with no choices and the usage, as OpenAI's `stream_options.include_usage` does.
    """

    def __init__(self, *, created: int, include_usage: bool, json_tool: str | None = None) -> None:
        self._created = created
        self._include_usage = include_usage
        self._json_tool = json_tool
        self._id: str | None = None
        self._model: str | None = None
        self._raw_usage: dict[str, Any] | None = None
        self._finish_reason: str | None = None
        self._done = False
        self._tool_index: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_calls index
        self._json_block: int | None = None  # Anthropic block index of the json_tool call

    @property
    def usage(self) -> Usage | None:
        """Usage so far; None until `message_start` was seen."""
        return None if self._raw_usage is None else usage_from_anthropic(self._raw_usage)

    @property
    def finish_reason(self) -> str | None:
        """OpenAI finish_reason once `message_delta` gave the stop reason."""
        return self._finish_reason

    @property
    def response_id(self) -> str | None:
        """The Anthropic message id, used as the chunk id."""
        return self._id

    @property
    def model(self) -> str | None:
        """The model Anthropic reported in `message_start`."""
        return self._model

    @property
    def done(self) -> bool:
        """True once `message_stop` was seen."""
        return self._done

    def feed(self, event: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Take one Anthropic SSE event (name and parsed data); return the chunks to emit.

        Raises AnthropicStreamError for an `error` event. Unknown events are ignored, as
        Anthropic asks of clients.
        """
        if event == "message_start":
            message = _object(data, "message")
            self._id, self._model = message.get("id"), message.get("model")
            self._raw_usage = dict(_object(message, "usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if event == "content_block_start":
            return self._block_start(data.get("index", 0), _object(data, "content_block"))
        if event == "content_block_delta":
            return self._block_delta(data.get("index", 0), _object(data, "delta"))
        if event == "message_delta":
            return self._message_delta(data)
        if event == "message_stop":
            self._done = True
            if not self._include_usage:
                return []
            final = self._chunk({})
            final["choices"] = []
            final["usage"] = (self.usage or Usage()).to_openai()
            return [final]
        if event == "error":
            error = _object(data, "error")
            raise AnthropicStreamError(str(error.get("type", "error")), str(error.get("message", "")))
        return []  # ping, content_block_stop and events added later

    def _block_start(self, index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind != "tool_use":
            return []  # thinking and server-side tool blocks have no OpenAI counterpart
        if self._json_tool is not None and block.get("name") == self._json_tool and self._json_block is None:
            self._json_block = index
            return []
        self._tool_index[index] = k = len(self._tool_index)
        function = {"name": block.get("name"), "arguments": ""}
        call = {"index": k, "id": block.get("id"), "type": "function", "function": function}
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[dict[str, Any]]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind != "input_json_delta" or not delta.get("partial_json"):
            return []  # thinking, signature and citation deltas; the empty first json delta
        if index == self._json_block:
            return [self._chunk({"content": delta["partial_json"]})]
        if index not in self._tool_index:
            return []
        call = {"index": self._tool_index[index], "function": {"arguments": delta["partial_json"]}}
        return [self._chunk({"tool_calls": [call]})]

    def _message_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        self._raw_usage = self._raw_usage or {}
        self._raw_usage.update({k: v for k, v in _object(data, "usage").items() if isinstance(v, int)})
        finish_reason = map_stop_reason(_object(data, "delta").get("stop_reason"))
        if self._json_block is not None and finish_reason == "tool_calls" and not self._tool_index:
            finish_reason = "stop"
        self._finish_reason = finish_reason
        return [self._chunk({}, finish_reason)]

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self._id or "",
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model or "",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk
