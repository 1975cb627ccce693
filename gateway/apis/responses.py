"""OpenAI's Responses API (`POST /v1/responses`): the openai SDK's `responses`, the OpenAI Agents SDK.

Errors are OpenAI's shape. Streams are semantic events (`response.created` ... `response.completed`),
each with a `sequence_number`; the gateway keeps those strictly increasing in whatever it adds.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import orjson
from pydantic import Field

from gateway.apis.base import Api, Event, Shape, StreamReader, StreamState
from gateway.apis.chat import parse_event
from gateway.apis.counting import Uncountable, json_tokens, text_of, tools_tokens
from gateway.apis.sizes import CHARS_PER_TOKEN, TOKENS_PER_MESSAGE
from gateway.errors import GatewayError, UpstreamBadResponse, UpstreamStreamError
from gateway.metering.tokenizers import Tokenizer
from gateway.metering.usage import Usage
from gateway.schemas import Open, validate
from gateway.translate.responses_to_chat import new_response_id, stream_error_events

# Tools that run on OpenAI's side: only a provider speaking the Responses API itself can serve them.
HOSTED_TOOLS = frozenset(
    {
        "web_search",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "file_search",
        "code_interpreter",
        "computer_use_preview",
        "image_generation",
        "mcp",
        "local_shell",
        "shell",
        "apply_patch",
    }
)
# Parameters whose meaning is state the provider keeps.
STATEFUL = ("previous_response_id", "conversation", "prompt")
TERMINAL = frozenset({"response.completed", "response.incomplete"})
_RESPONSE_EVENTS = frozenset(
    {"response.created", "response.in_progress", "response.completed", "response.incomplete", "response.failed"}
)


class _Item(Open):
    type: str | None = None


class ResponsesRequest(Open):
    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: str | list[_Item] | None = None
    instructions: str | None = None
    stream: bool | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=2**31 - 1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    reasoning: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    previous_response_id: str | None = None
    store: bool | None = None


class ResponsesApi(Api):
    name = "responses"
    guard_shape = "responses"
    operation = "chat"

    def validate(self, body: dict[str, Any]) -> str:
        return validate(ResponsesRequest, body).model

    def shape(self, body: Mapping[str, Any]) -> Shape:
        chars = len(body.get("instructions") or "") if isinstance(body.get("instructions"), str) else 0
        images = 0
        value = body.get("input")
        if isinstance(value, str):
            chars += len(value) + TOKENS_PER_MESSAGE * CHARS_PER_TOKEN
        for item in value if isinstance(value, list) else ():
            if isinstance(item, dict):
                item_chars, item_images = _item_size(item)
                chars, images = chars + item_chars, images + item_images
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
        max_output = body.get("max_output_tokens")
        return Shape(
            prompt_chars=chars,
            images=images,
            messages=len(value) if isinstance(value, list) else 1,
            max_output=max_output if isinstance(max_output, int) else None,
            tools=bool(body.get("tools")),
            json_schema=isinstance(fmt, dict) and fmt.get("type") == "json_schema",
            stream=body.get("stream") is True,
            native_only=native_only(body),
        )

    def prompt_tokens(self, body: Mapping[str, Any], tok: Tokenizer) -> int | None:
        """The instructions and every input item as a message of OpenAI's chat format (a function call
        or its output bounded by its JSON), plus tools and a response schema."""
        try:
            total = tok.priming
            instructions = body.get("instructions")
            if instructions is not None:
                total += tok.per_message + 1 + text_of(instructions, tok)
            value = body.get("input")
            items = [{"role": "user", "content": value}] if isinstance(value, str) else value or ()
            if not isinstance(items, list | tuple):
                raise Uncountable("input")
            for item in items:
                total += _item_tokens(item, tok)
            total += tools_tokens(body.get("tools"), tok)
            text = body.get("text")
            fmt = text.get("format") if isinstance(text, dict) else None
            if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
                total += tok.tools_base + json_tokens(fmt, tok)
            return total
        except Uncountable:
            return None

    def error_body(self, error: GatewayError) -> dict[str, Any]:
        return error.body()

    def stream_error(self, error: GatewayError, state: StreamState) -> list[dict[str, Any]]:
        """OpenAI ends a failed stream with an `error` event (whose nested `error` makes the SDKs
        raise) and `response.failed`."""
        return stream_error_events(
            error.code,
            error.message,
            response_id=state.response_id or new_response_id(),
            created_at=state.created or int(time.time()),
            model=state.model or "",
            sequence_number=state.sequence + 1,
            error_type=error.type,
        )

    def stream_model_holder(self, data: dict[str, Any]) -> dict[str, Any] | None:
        response = data.get("response") if data.get("type") in _RESPONSE_EVENTS else None
        return response if isinstance(response, dict) else None

    def output_text(self, data: Mapping[str, Any]) -> str:
        parts: list[str] = []
        for item in data.get("output") or ():
            if isinstance(item, dict):
                parts.append(_output_item_text(item))
        return "".join(parts)

    def event_text(self, data: Mapping[str, Any]) -> str:
        kind = data.get("type")
        if kind in ("response.output_text.delta", "response.function_call_arguments.delta", "response.refusal.delta"):
            delta = data.get("delta")
            return delta if isinstance(delta, str) else ""
        if kind == "response.output_item.added":
            item = data.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                return str(item.get("name") or "")
        return ""

    def finish_reasons(self, data: Mapping[str, Any]) -> list[str]:
        response = data.get("response") if data.get("type") in _RESPONSE_EVENTS else data
        if not isinstance(response, dict):
            return []
        status = response.get("status")
        if status == "incomplete":
            details = response.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, dict) else None
            return ["content_filter" if reason == "content_filter" else "length"]
        if status != "completed":
            return []
        calls = any(isinstance(i, dict) and i.get("type") == "function_call" for i in response.get("output") or ())
        return ["tool_calls" if calls else "stop"]

    def response_id(self, data: Mapping[str, Any]) -> str | None:
        response = data.get("response") if data.get("type") in _RESPONSE_EVENTS else data
        value = response.get("id") if isinstance(response, dict) else None
        return value if isinstance(value, str) else None

    def observe(self, state: StreamState, data: Mapping[str, Any]) -> None:
        sequence = data.get("sequence_number")
        if isinstance(sequence, int):
            state.sequence = max(state.sequence, sequence)
        response = data.get("response")
        if isinstance(response, dict):
            state.response_id = state.response_id or _str(response.get("id"))
            state.model = state.model or _str(response.get("model"))
            created = response.get("created_at")
            state.created = state.created or (created if isinstance(created, int) else None)

    def usage(self, data: Mapping[str, Any]) -> Usage | None:
        return usage_of(data.get("usage"))

    def check_response(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data.get("output"), list):
            raise UpstreamBadResponse("the provider's response has no `output` list")

    def stream_reader(self, *, hide_usage: bool = False) -> StreamReader:
        return ResponsesStreamReader()


class ResponsesStreamReader(StreamReader):
    """Semantic events; `response.completed` (or `.incomplete`) ends the stream and carries the usage,
    `response.failed` and `error` are failures."""

    def __init__(self) -> None:
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    def read(self, name: str | None, data: bytes) -> Event | None:
        event = parse_event(data)
        kind = event.get("type") or name
        if kind in TERMINAL:
            self._ended = True
            response = event.get("response")
            return Event(event, data, usage_of(response.get("usage")) if isinstance(response, dict) else None)
        if kind == "response.failed":
            response = event.get("response")
            error = response.get("error") if isinstance(response, dict) else None
            raise UpstreamStreamError(_message(error, "the provider's response failed"))
        if kind == "error":  # OpenAI nests the error object; the reference documents it flat
            nested = event.get("error")
            raise UpstreamStreamError(_message(nested if isinstance(nested, dict) else event, "the provider's error"))
        return Event(event, data)

    def check_complete(self) -> None:
        if not self._ended:
            raise UpstreamStreamError("the provider's stream ended before response.completed")


def usage_of(usage: Any) -> Usage | None:
    """The Responses API's `usage` object in the gateway's terms (input includes cached tokens)."""
    if not isinstance(usage, dict):
        return None
    read = Usage.from_openai(
        {
            "prompt_tokens": usage.get("input_tokens"),
            "completion_tokens": usage.get("output_tokens"),
            "prompt_tokens_details": usage.get("input_tokens_details"),
            "completion_tokens_details": usage.get("output_tokens_details"),
        }
    )
    return read


def native_only(body: Mapping[str, Any]) -> str | None:
    """The first parameter only a provider with the Responses API itself can serve, if any."""
    for name in STATEFUL:
        if body.get(name):
            return name
    if body.get("background") is True:
        return "background"
    for i, tool in enumerate(body.get("tools") or ()):
        if isinstance(tool, dict) and tool.get("type") in HOSTED_TOOLS:
            return f"tools.{i}"
    for i, item in enumerate(body.get("input") or () if isinstance(body.get("input"), list) else ()):
        if isinstance(item, dict) and item.get("type") == "item_reference":
            return f"input.{i}"
    return None


def _item_size(item: Mapping[str, Any]) -> tuple[int, int]:
    kind = item.get("type")
    if kind == "function_call":
        return len(str(item.get("arguments") or "")), 0
    if kind == "function_call_output":
        output = item.get("output")
        return (len(output) if isinstance(output, str) else len(orjson.dumps(output))), 0
    content = item.get("content")
    chars, images = TOKENS_PER_MESSAGE * CHARS_PER_TOKEN, 0
    if isinstance(content, str):
        return chars + len(content), 0
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "input_image":
            images += 1
        else:
            chars += len(str(part.get("text") or ""))
    return chars, images


def _item_tokens(item: Any, tok: Tokenizer) -> int:
    if not isinstance(item, dict):
        raise Uncountable("item")
    kind = item.get("type", "message")
    if kind == "function_call":
        return tok.per_message + tok.per_tool + text_of(item.get("name"), tok) + text_of(item.get("arguments"), tok)
    if kind == "function_call_output":
        return tok.per_message + text_of(item.get("call_id"), tok) + text_of(item.get("output"), tok)
    if kind != "message":
        raise Uncountable(f"a {kind} item")
    total = tok.per_message + text_of(item.get("role"), tok)
    content = item.get("content")
    if isinstance(content, str):
        return total + text_of(content, tok)
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict) or part.get("type") not in ("input_text", "output_text", "refusal", "text"):
            raise Uncountable("a content part other than text")
        total += text_of(part.get("text", part.get("refusal")), tok)
    return total


def _output_item_text(item: Mapping[str, Any]) -> str:
    if item.get("type") == "function_call":
        return f"{item.get('name') or ''}{item.get('arguments') or ''}"
    parts = []
    for part in item.get("content") or ():
        if isinstance(part, dict):
            text = part.get("text") if part.get("type") == "output_text" else part.get("refusal")
            parts.append(text if isinstance(text, str) else "")
    return "".join(parts)


def _message(error: Any, default: str) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        code = error.get("code")
        return f"{code}: {error['message']}" if isinstance(code, str) else str(error["message"])
    return default


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
