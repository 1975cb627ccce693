"""The Anthropic Messages wire format, validated the way Anthropic validates it."""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, Iterator
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .log import Logged, RequestLog
from .responses import EventStream, StreamCut, entry_of, json_response, scripted_outcome, sse_event
from .scenario import (
    CACHE_CREATION_TOKENS,
    CACHE_READ_TOKENS,
    CONTEXT_TOO_LONG,
    LATE_END_SECONDS,
    STREAM_SLOW_DELAY,
    Scenario,
    compact_json,
    pieces,
    prompt_tokens,
    reply_text,
    scenario_for,
    split_in_parts,
    tool_arguments,
    tool_completion_tokens,
    truncate,
    word_count,
)

FIELDS = {
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
    "output_config",
    "output_format",
}
FRAMES_BEFORE_TROUBLE = 5  # message_start, ping, content_block_start, two deltas

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_error(status: int, message: str | None = None) -> Response:
    kind = _ERROR_TYPES.get(status, "api_error")
    if message == CONTEXT_TOO_LONG:
        message = "prompt is too long: 210000 tokens > 200000 maximum"
    if message is None:
        message = "bad param from stand-in" if status == 400 else f"stand-in scripted failure {status}"
    headers = {"retry-after": "1"} if status == 429 else None
    return json_response({"type": "error", "error": {"type": kind, "message": message}}, status, headers)


def _event(name: str, **fields: Any) -> bytes:
    return sse_event(name, {"type": name, **fields})


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [block for block in content if isinstance(block, dict)] if isinstance(content, list) else []


def _block_text(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return f"{block.get('name', '')} {compact_json(block.get('input', {}))}"
    if kind == "tool_result":
        return " ".join(_block_text(inner) for inner in _blocks(block.get("content", "")))
    return ""


def _texts(body: dict[str, Any]) -> Iterator[str]:
    system = body.get("system")
    if system:
        yield " ".join(_block_text(block) for block in _blocks(system))
    for message in body["messages"]:
        yield " ".join(_block_text(block) for block in _blocks(message.get("content")))


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    """Text of the last user message that has text (messages carrying only tool results are skipped)."""
    for message in reversed(messages):
        texts = [str(b.get("text", "")) for b in _blocks(message.get("content")) if b.get("type") == "text"]
        if message.get("role") == "user" and texts:
            return " ".join(texts)
    return ""


def _ids_of(message: dict[str, Any], kind: str, key: str) -> set[str]:
    return {str(block.get(key)) for block in _blocks(message.get("content")) if block.get("type") == kind}


def validate(headers: dict[str, str], body: dict[str, Any] | None) -> Response | None:
    """Anthropic's own checks, with its error shape; None when the request is acceptable."""
    if not headers.get("x-api-key"):
        return anthropic_error(401, "x-api-key header is required")
    if not headers.get("anthropic-version"):
        return anthropic_error(400, "anthropic-version: header is required")
    if body is None:
        return anthropic_error(400, "The request body is not valid JSON.")
    for name in body:
        if name not in FIELDS:
            return anthropic_error(400, f"{name}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return anthropic_error(400, "model: Field required")
    if not isinstance(body.get("max_tokens"), int) or isinstance(body["max_tokens"], bool):
        return anthropic_error(400, "max_tokens: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return anthropic_error(400, "messages: at least one message is required")
    if not isinstance(body.get("system", ""), str | list):
        return anthropic_error(400, "system: Input should be a valid string or a list of text blocks")
    previous = None
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            return anthropic_error(
                400,
                'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
                'parameter, not "system" as an input message role.',
            )
        if role not in ("user", "assistant"):
            return anthropic_error(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if not isinstance(message.get("content"), str | list):
            return anthropic_error(400, f"messages.{i}.content: Field required")
        if previous is None and role != "user":
            return anthropic_error(400, 'messages: first message must use the "user" role')
        if previous is not None and role == previous.get("role"):
            return anthropic_error(
                400,
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row',
            )
        used = _ids_of(previous, "tool_use", "id") if previous else set()
        results = _ids_of(message, "tool_result", "tool_use_id")
        if used - results:
            return anthropic_error(
                400,
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                f"{', '.join(sorted(used - results))}",
            )
        if results - used:
            return anthropic_error(400, f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks")
        previous = message
    if previous is not None and _ids_of(previous, "tool_use", "id"):
        return anthropic_error(400, "messages: `tool_use` blocks must be followed by `tool_result` blocks")
    return None


def _tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = [tool for tool in body.get("tools") or [] if isinstance(tool, dict) and tool.get("name")]
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        choice = {"type": "auto"}
    if not tools or choice.get("type") == "none" or _ids_of(body["messages"][-1], "tool_result", "tool_use_id"):
        return None
    if choice.get("type") == "tool":
        return next((tool for tool in tools if tool["name"] == choice.get("name")), tools[0])
    return tools[0]


class AnthropicWire:
    def __init__(self, log: RequestLog, ids: itertools.count[int]) -> None:
        self.log = log
        self.ids = ids

    def routes(self) -> list[Route]:
        return [
            Route("/v1/messages", self.messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", self.count_tokens, methods=["POST"]),
        ]

    async def count_tokens(self, request: Request) -> Response:
        """Anthropic's token counting: the prompt as the stand-in counts it, no answer."""
        entry = entry_of(request)
        body = entry.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
            return anthropic_error(400, "model and messages are required")
        return json_response({"input_tokens": prompt_tokens(_texts(body))})

    async def messages(self, request: Request) -> Response:
        entry = entry_of(request)
        invalid = validate(entry.headers, entry.body)
        if invalid is not None:
            return invalid
        body: dict[str, Any] = entry.body  # type: ignore[assignment]
        scenario = scenario_for(body["model"])
        early = await scripted_outcome(request, self.log, scenario, anthropic_error)
        if early is not None:
            return early

        number = next(self.ids)
        tool = _tool_to_call(body)
        if tool is not None:
            arguments = tool_arguments(tool.get("input_schema"))
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": f"toolu_standin_{number}",
                "name": tool["name"],
                "input": arguments,
            }
            stop_reason = "tool_use"
            output_tokens = tool_completion_tokens(tool["name"], compact_json(arguments))
        else:
            text, cut = truncate(reply_text(scenario, _last_user_text(body["messages"]), body), body["max_tokens"])
            block = {"type": "text", "text": text}
            stop_reason = "max_tokens" if cut else "end_turn"
            output_tokens = word_count(text)
        usage = {
            "input_tokens": prompt_tokens(_texts(body)),
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": CACHE_CREATION_TOKENS if scenario.cache else 0,
            "cache_read_input_tokens": CACHE_READ_TOKENS if scenario.cache else 0,
        }
        self.log.update(entry, full_usage=usage)
        message = {
            "id": f"msg_standin_{number}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [block],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        headers = {"request-id": f"req_standin_{number}"}
        if body.get("stream"):
            end_delay = LATE_END_SECONDS if scenario.late_end else 0.0
            return EventStream(self._frames(scenario, entry, message), self.log, entry, headers, end_delay)
        self.log.update(entry, usage=usage)
        return json_response(message, headers=headers)

    async def _frames(self, scenario: Scenario, entry: Logged, message: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        usage = message["usage"]
        block = message["content"][0]
        start_usage = {**usage, "output_tokens": 1}
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}
        if block["type"] == "text":
            opening = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in pieces(block["text"])]
        else:
            opening = {**block, "input": {}}
            arguments = compact_json(block["input"])
            deltas = [{"type": "input_json_delta", "partial_json": part} for part in ["", *split_in_parts(arguments)]]
        end_delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
        frames: list[tuple[bytes, dict[str, Any] | None]] = [
            (_event("message_start", message=start), start_usage),
            (_event("ping"), None),
            (_event("content_block_start", index=0, content_block=opening), None),
            *((_event("content_block_delta", index=0, delta=delta), None) for delta in deltas),
            (_event("content_block_stop", index=0), None),
            (
                _event("message_delta", delta=end_delta, usage={"output_tokens": usage["output_tokens"]}),
                usage,
            ),
            (_event("message_stop"), None),
        ]
        for i, (frame, sent_usage) in enumerate(frames):
            if i == FRAMES_BEFORE_TROUBLE and scenario.stream_cut:
                raise StreamCut
            if i == FRAMES_BEFORE_TROUBLE and scenario.stream_error:
                yield _event("error", error={"type": "overloaded_error", "message": "Overloaded"})
                return
            if i and scenario.stream_slow:
                await anyio.sleep(STREAM_SLOW_DELAY)
            yield frame
            if sent_usage is not None:
                self.log.update(entry, usage=sent_usage)
