"""OpenAI Chat Completions (`POST /v1/chat/completions`): the gateway's first API, and the pivot every
other API is translated through for providers that do not speak it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from gateway import sse
from gateway.apis.base import Api, Event, Shape, StreamReader, encode
from gateway.apis.counting import Uncountable, json_tokens, text_of, tools_tokens
from gateway.apis.sizes import CHARS_PER_TOKEN, TOKENS_PER_MESSAGE
from gateway.errors import GatewayError, UpstreamBadResponse, UpstreamStreamError
from gateway.metering.tokenizers import Tokenizer
from gateway.metering.usage import Usage
from gateway.schemas import ChatRequest, validate


class ChatApi(Api):
    name = "chat"
    guard_shape = "chat"
    operation = "chat"

    def validate(self, body: dict[str, Any]) -> str:
        return validate(ChatRequest, body).model

    def shape(self, body: Mapping[str, Any]) -> Shape:
        messages = body.get("messages")
        chars, images = message_size(messages)
        response_format = body.get("response_format")
        n = body.get("n")
        choices = n if isinstance(n, int) and n > 1 else 1
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        return Shape(
            prompt_chars=chars,
            images=images,
            messages=len(messages) if isinstance(messages, list) else 0,
            max_output=max_tokens * choices if isinstance(max_tokens, int) else None,
            choices=choices,
            tools=bool(body.get("tools")),
            json_schema=isinstance(response_format, dict) and response_format.get("type") == "json_schema",
            stream=body.get("stream") is True,
        )

    def prompt_tokens(self, body: Mapping[str, Any], tok: Tokenizer) -> int | None:
        """OpenAI's count of chat messages (its cookbook's: 3 a message, the role and content, 1 and the
        name for a name, 3 to prime the reply), plus bounds for tool calls, tools and a response schema."""
        try:
            total = tok.priming
            for message in body.get("messages") or ():
                if not isinstance(message, dict):
                    raise Uncountable("message")
                total += tok.per_message + text_of(message.get("role"), tok)
                total += _content_tokens(message.get("content"), tok)
                if message.get("name") is not None:
                    total += tok.per_name + text_of(message.get("name"), tok)
                for call in message.get("tool_calls") or ():
                    total += tok.per_tool + json_tokens(call, tok)
                total += text_of(message.get("tool_call_id"), tok)
            total += tools_tokens(body.get("tools"), tok) + tools_tokens(body.get("functions"), tok)
            response_format = body.get("response_format")
            if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
                total += tok.tools_base + json_tokens(response_format.get("json_schema"), tok)
            return total
        except Uncountable:
            return None

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        return error.body()

    def frame(self, data: Mapping[str, Any] | None, raw: bytes | None = None) -> bytes:
        return sse.encode_data(raw if raw is not None else encode(data))

    def stream_end(self) -> bytes:
        return sse.DONE

    def stream_model_holder(self, data: dict[str, Any]) -> dict[str, Any] | None:
        return data

    def output_text(self, data: Mapping[str, Any]) -> str:
        parts: list[str] = []
        for choice in data.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict):
                _message_text(message, parts)
        return "".join(parts)

    def event_text(self, data: Mapping[str, Any]) -> str:
        parts: list[str] = []
        for choice in data.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                _message_text(delta, parts)
        return "".join(parts)

    def finish_reasons(self, data: Mapping[str, Any]) -> list[str]:
        reasons: list[str] = []
        for choice in data.get("choices") or ():
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            if isinstance(reason, str):
                reasons.append(reason)
        return reasons

    def usage(self, data: Mapping[str, Any]) -> Usage | None:
        return Usage.from_openai(data.get("usage"))

    def check_response(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data.get("choices"), list):
            raise UpstreamBadResponse("the provider's chat completion has no `choices` list")

    def stream_reader(self, *, hide_usage: bool = False) -> StreamReader:
        return ChatStreamReader(hide_usage)


class ChatStreamReader(StreamReader):
    """`data:` chunks ending with `data: [DONE]`; an object with `error` and no `choices` is a
    provider error mid-stream. With `hide_usage` the gateway asked for usage the client did not:
    usage is taken off the chunks and the usage-only chunk is not shown."""

    def __init__(self, hide_usage: bool) -> None:
        self._hide_usage = hide_usage
        self._finished = False
        self._done = False

    @property
    def ended(self) -> bool:
        return self._done

    def read(self, name: str | None, data: bytes) -> Event | None:
        if data == b"[DONE]":
            self._done = True
            return None
        chunk = parse_event(data)
        if "error" in chunk and "choices" not in chunk:
            raise UpstreamStreamError(_error_message(chunk))
        choices = chunk.get("choices")
        if isinstance(choices, list) and any(isinstance(c, dict) and c.get("finish_reason") for c in choices):
            self._finished = True
        usage = Usage.from_openai(chunk.get("usage"))
        if self._hide_usage and "usage" in chunk:
            del chunk["usage"]  # the chunks the client would have had without us
            return Event(chunk, None, usage, visible=bool(choices))
        return Event(chunk, data, usage)

    def check_complete(self) -> None:
        if not (self._done or self._finished):
            raise UpstreamStreamError("the provider's stream ended before it finished")


def parse_event(data: bytes) -> dict[str, Any]:
    """One stream event's JSON object."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise UpstreamBadResponse("the stream carried an event that is not JSON") from None
    if not isinstance(parsed, dict):
        raise UpstreamBadResponse("the stream carried an event that is not a JSON object")
    return parsed


def message_size(messages: Any) -> tuple[int, int]:
    """Characters of text and the number of images in chat messages."""
    chars = images = 0
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        chars += TOKENS_PER_MESSAGE * CHARS_PER_TOKEN
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "image_url":
                    images += 1
                else:
                    chars += len(str(part.get("text") or ""))
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                chars += len(str(function.get("arguments") or ""))
    return chars, images


def _content_tokens(content: Any, tok: Tokenizer) -> int:
    if content is None or isinstance(content, str):
        return text_of(content, tok)
    if not isinstance(content, list):
        raise Uncountable("content")
    total = 0
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
            raise Uncountable("a content part other than text")
        total += text_of(part.get("text", part.get("refusal")), tok)
    return total


def _message_text(message: Mapping[str, Any], parts: list[str]) -> None:
    """Content, and tool-call names and arguments, of a message or a delta."""
    content = message.get("content")
    if isinstance(content, str):
        parts.append(content)
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            parts.append(f"{function.get('name') or ''}{function.get('arguments') or ''}")


def _error_message(data: Mapping[str, Any]) -> str:
    """The provider's message whole: the provider scrubs it of secrets, then shortens it (cut first,
    a secret across the cut would not be recognised)."""
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return "the provider sent an error event"
