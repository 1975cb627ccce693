"""Anthropic's Messages API (`POST /v1/messages`): the anthropic SDK and Claude Code speak it.

Errors are Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`, with the same
statuses as everywhere else. Streams are named events (`message_start` ... `message_stop`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field

from gateway.apis.base import Api, Event, Shape, StreamReader
from gateway.apis.chat import parse_event
from gateway.apis.counting import Uncountable, json_tokens, text_of, tools_tokens
from gateway.apis.sizes import CHARS_PER_TOKEN, TOKENS_PER_MESSAGE
from gateway.errors import GatewayError, UpstreamBadResponse, UpstreamStreamError
from gateway.metering.tokenizers import Tokenizer
from gateway.metering.usage import Usage
from gateway.schemas import Open, validate

# Anthropic's error type for each status the gateway answers with.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}
STOP_REASONS = {  # the conventions' finish reasons
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
SERVER_TOOL_PREFIXES = ("web_search", "web_fetch", "code_execution", "bash", "text_editor", "computer", "memory")


class _Block(Open):
    type: Annotated[str, Field(min_length=1)]


class _Message(Open):
    role: Literal["user", "assistant"]
    content: str | list[_Block]


class _Tool(Open):
    name: Annotated[str, Field(min_length=1, max_length=128)]


class MessagesRequest(Open):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: list[_Message] = Field(min_length=1)
    max_tokens: int = Field(ge=1, le=2**31 - 1)
    system: str | list[_Block] | None = None
    stream: bool | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0, le=2**31 - 1)
    tools: list[_Tool] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None


class MessagesApi(Api):
    name = "messages"
    guard_shape = "messages"
    operation = "chat"
    native_headers = ("anthropic-version", "anthropic-beta")

    def validate(self, body: dict[str, Any]) -> str:
        return validate(MessagesRequest, body).model

    def shape(self, body: Mapping[str, Any]) -> Shape:
        chars, images = len(_text(body.get("system"))), 0
        for message in body.get("messages") or ():
            if not isinstance(message, dict):
                continue
            chars += TOKENS_PER_MESSAGE * CHARS_PER_TOKEN
            content = message.get("content")
            if isinstance(content, str):
                chars += len(content)
                continue
            for block in content if isinstance(content, list) else ():
                if isinstance(block, dict) and block.get("type") == "image":
                    images += 1
                elif isinstance(block, dict):
                    chars += _block_chars(block)
        tools = body.get("tools")
        max_tokens = body.get("max_tokens")
        messages = body.get("messages")
        return Shape(
            prompt_chars=chars,
            images=images,
            messages=len(messages) if isinstance(messages, list) else 0,
            max_output=max_tokens if isinstance(max_tokens, int) else None,
            tools=bool(tools),
            stream=body.get("stream") is True,
            native_only=_server_tool(tools),
        )

    def prompt_tokens(self, body: Mapping[str, Any], tok: Tokenizer) -> int | None:
        """The system prompt, every message and content block, tool definitions and results, as the
        tokenizer bounds them (Anthropic's is not public: `gateway.metering.tokenizers`)."""
        try:
            total = tok.priming + _blocks_tokens(body.get("system"), tok)
            for message in body.get("messages") or ():
                if not isinstance(message, dict):
                    raise Uncountable("message")
                total += tok.per_message + text_of(message.get("role"), tok)
                total += _blocks_tokens(message.get("content"), tok)
            return total + tools_tokens(body.get("tools"), tok)
        except Uncountable:
            return None

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        kind = ERROR_TYPES.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")
        return {"type": "error", "error": {"type": kind, "message": error.message}}

    def stream_error(self, error: GatewayError, state: Any) -> list[dict[str, Any]]:
        return [self.error_body(error)]

    def stream_model_holder(self, data: dict[str, Any]) -> dict[str, Any] | None:
        message = data.get("message") if data.get("type") == "message_start" else None
        return message if isinstance(message, dict) else None

    def output_text(self, data: Mapping[str, Any]) -> str:
        parts: list[str] = []
        for block in data.get("content") or ():
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
            elif block.get("type") == "tool_use":
                parts.append(f"{block.get('name') or ''}{orjson.dumps(block.get('input') or {}).decode()}")
        return "".join(parts)

    def event_text(self, data: Mapping[str, Any]) -> str:
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict):
                text = delta.get("text") if delta.get("type") == "text_delta" else delta.get("partial_json")
                return text if isinstance(text, str) else ""
        elif kind == "content_block_start":
            block = data.get("content_block")
            if isinstance(block, dict) and block.get("type") == "tool_use":
                return str(block.get("name") or "")
        return ""

    def finish_reasons(self, data: Mapping[str, Any]) -> list[str]:
        reason = data.get("stop_reason")
        if data.get("type") == "message_delta" and isinstance(data.get("delta"), dict):
            reason = data["delta"].get("stop_reason")
        return [STOP_REASONS.get(reason, "stop")] if isinstance(reason, str) else []

    def response_id(self, data: Mapping[str, Any]) -> str | None:
        message = data.get("message") if data.get("type") == "message_start" else data
        value = message.get("id") if isinstance(message, dict) else None
        return value if isinstance(value, str) else None

    def usage(self, data: Mapping[str, Any]) -> Usage | None:
        usage = data.get("usage")
        return Usage.from_anthropic(usage) if isinstance(usage, dict) else None

    def check_response(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data.get("content"), list):
            raise UpstreamBadResponse("the provider's message has no `content` list")

    def stream_reader(self, *, hide_usage: bool = False) -> StreamReader:
        return MessagesStreamReader()


class MessagesStreamReader(StreamReader):
    """Named events: usage starts in `message_start` (input, cache reads and writes) and ends in
    `message_delta` (cumulative output); `message_stop` ends the stream; `error` is a failure."""

    def __init__(self) -> None:
        self._usage: dict[str, Any] | None = None
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    def read(self, name: str | None, data: bytes) -> Event | None:
        event = parse_event(data)
        kind = event.get("type") or name
        usage = None
        if kind == "message_start":
            message = event.get("message")
            start = message.get("usage") if isinstance(message, dict) else None
            self._usage = dict(start) if isinstance(start, dict) else {}
        elif kind == "message_delta":
            delta = event.get("usage")
            self._usage = self._usage or {}
            if isinstance(delta, dict):
                self._usage.update({k: v for k, v in delta.items() if isinstance(v, int)})
            usage = self.reported()
        elif kind == "message_stop":
            self._ended = True
        elif kind == "error":
            error = event.get("error")
            error = error if isinstance(error, dict) else {}
            raise UpstreamStreamError(f"{error.get('type', 'error')}: {error.get('message', '')}")
        return Event(event, data, usage)

    def check_complete(self) -> None:
        if not self._ended:
            raise UpstreamStreamError("the provider's stream ended before message_stop")

    def reported(self) -> Usage | None:
        return None if self._usage is None else Usage.from_anthropic(self._usage)


def _text(value: Any) -> str:
    """The text of a string or of a list of text blocks."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(str(b.get("text") or "") for b in value if isinstance(b, dict))
    return ""


def _blocks_tokens(content: Any, tok: Tokenizer) -> int:
    if content is None or isinstance(content, str):
        return text_of(content, tok)
    if not isinstance(content, list):
        raise Uncountable("content")
    total = 0
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            total += text_of(block.get("text"), tok)
        elif kind == "thinking":
            total += text_of(block.get("thinking"), tok)
        elif kind == "tool_use":
            total += tok.per_tool + text_of(block.get("name"), tok) + json_tokens(block.get("input"), tok)
        elif kind == "tool_result":
            total += tok.per_message + text_of(block.get("tool_use_id"), tok)
            total += _blocks_tokens(block.get("content"), tok)
        else:  # images, documents, redacted thinking, server tool blocks: not counted here
            raise Uncountable(f"a {kind} block")
    return total


def _block_chars(block: Mapping[str, Any]) -> int:
    kind = block.get("type")
    if kind == "text":
        return len(str(block.get("text") or ""))
    if kind == "tool_use":
        return len(orjson.dumps(block.get("input") or {}))
    if kind == "tool_result":
        return len(_text(block.get("content")))
    return 0


def _server_tool(tools: Any) -> str | None:
    """`tools.N` of the first tool only Anthropic can run (web search, code execution...), if any."""
    for i, tool in enumerate(tools if isinstance(tools, list) else ()):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if isinstance(kind, str) and kind != "custom" and kind.startswith(SERVER_TOOL_PREFIXES):
            return f"tools.{i}"
    return None
