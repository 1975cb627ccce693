"""The OpenAI Responses wire format: `POST /v1/responses`, whole or streamed, as OpenAI sends it.

The reply follows the chat endpoint's rules (a function tool is called when tools are given, the
tool choice is not "none" and the last input item is not a tool result; otherwise the text reply
of the scenario), plus what only Responses has: a `reasoning` item (and reasoning tokens) when the
request sets `reasoning`, and a `web_search_call` item before the text when a web search tool is
offered. Other hosted tools are accepted and left unused. Streams carry the semantic events with
`sequence_number` and end after `response.completed` (no `[DONE]`).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .log import Logged, RequestLog
from .openai_api import openai_error
from .responses import EventStream, StreamCut, entry_of, json_response, scripted_outcome, sse_event
from .scenario import (
    CACHE_READ_TOKENS,
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

WEB_SEARCH_TOOLS = frozenset(
    {"web_search", "web_search_preview", "web_search_2025_08_26", "web_search_preview_2025_03_11"}
)
HOSTED_TOOLS = WEB_SEARCH_TOOLS | {
    "file_search",
    "code_interpreter",
    "computer_use_preview",
    "computer",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
    "custom",
    "tool_search",
}
ROLES = {"user", "assistant", "system", "developer"}
REASONING_TOKENS = 16  # reported (within output_tokens) when the request sets `reasoning`
FRAMES_BEFORE_TROUBLE = 5  # stream-cut / stream-error: created, in_progress, the first item's opening, one delta


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    value = body["input"]
    return [{"role": "user", "content": value}] if isinstance(value, str) else value


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return " ".join(str(p.get("text") or p.get("refusal") or "") for p in parts if isinstance(p, dict))


def _item_text(item: dict[str, Any]) -> str:
    kind = item.get("type", "message")
    if kind == "function_call":
        return f"{item.get('name', '')} {item.get('arguments', '')}"
    if kind == "function_call_output":
        return _content_text(item.get("output"))
    return _content_text(item.get("content")) if kind == "message" else ""


def _texts(body: dict[str, Any]) -> Iterator[str]:
    if isinstance(body.get("instructions"), str):
        yield body["instructions"]
    for item in _items(body):
        yield _item_text(item)


def _last_user_text(items: list[dict[str, Any]]) -> str:
    for item in reversed(items):
        if item.get("type", "message") == "message" and item.get("role") == "user":
            return _content_text(item.get("content"))
    return ""


def _validate(body: dict[str, Any] | None) -> Response | None:
    """OpenAI's own checks on the parts the stand-in reads, with its error shape."""
    if body is None:
        return openai_error(400, "We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return openai_error(400, "Missing required parameter: 'model'.", "model")
    value = body.get("input")
    if not isinstance(value, str) and not (isinstance(value, list) and value):
        return openai_error(400, "Missing required parameter: 'input'.", "input")
    for i, item in enumerate(_items(body)):
        if not isinstance(item, dict) or not isinstance(item.get("type", item.get("role")), str):
            return openai_error(400, f"Invalid value for 'input[{i}]'.", f"input[{i}]")
        if item.get("type", "message") == "message" and item.get("role") not in ROLES:
            return openai_error(400, f"Invalid value: '{item.get('role')}'.", f"input[{i}].role")
    if not isinstance(body.get("tools") or [], list):
        return openai_error(400, "Invalid type for 'tools': expected an array.", "tools")
    if not isinstance(body.get("reasoning") or {}, dict):
        return openai_error(400, "Invalid type for 'reasoning': expected an object.", "reasoning")
    for i, tool in enumerate(body.get("tools") or []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function" and not isinstance(tool.get("name"), str):
            return openai_error(400, f"Missing required parameter: 'tools[{i}].name'.", f"tools[{i}].name")
        if kind != "function" and kind not in HOSTED_TOOLS:
            return openai_error(400, f"Invalid value: '{kind}'.", f"tools[{i}].type")
    return None


def _tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The function tool the stand-in calls (as the chat endpoint decides), or None."""
    tools = [t for t in body.get("tools") or [] if t.get("type") == "function"]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none" or _items(body)[-1].get("type") == "function_call_output":
        return None
    if isinstance(choice, dict) and choice.get("type") == "function":
        return next((tool for tool in tools if tool["name"] == choice.get("name")), tools[0])
    return tools[0]


def _web_search(body: dict[str, Any]) -> bool:
    tools = body.get("tools") or []
    return body.get("tool_choice") != "none" and any(tool.get("type") in WEB_SEARCH_TOOLS for tool in tools)


@dataclass
class _Reply:
    output: list[dict[str, Any]]
    output_tokens: int
    incomplete: bool = False


class ResponsesWire:
    def __init__(self, log: RequestLog, ids: itertools.count[int]) -> None:
        self.log = log
        self.ids = ids

    def routes(self) -> list[Route]:
        return [Route("/v1/responses", self.responses, methods=["POST"])]

    async def responses(self, request: Request) -> Response:
        entry = entry_of(request)
        invalid = _validate(entry.body)
        if invalid is not None:
            return invalid
        body: dict[str, Any] = entry.body  # type: ignore[assignment]
        scenario = scenario_for(body["model"])
        early = await scripted_outcome(request, self.log, scenario, openai_error)
        if early is not None:
            return early

        number = next(self.ids)
        reply = self._reply(scenario, body, number)
        usage = self._usage(scenario, body, reply)
        self.log.update(entry, full_usage=usage)
        response = self._response(body, number, reply, None if scenario.no_usage else usage)
        headers = {"x-request-id": f"req_standin_{number}"}
        if body.get("stream"):
            frames = self._frames(scenario, entry, response)
            return EventStream(frames, self.log, entry, headers, LATE_END_SECONDS if scenario.late_end else 0.0)
        self.log.update(entry, usage=response["usage"])
        return json_response(response, headers=headers)

    def _reply(self, scenario: Scenario, body: dict[str, Any], number: int) -> _Reply:
        output: list[dict[str, Any]] = []
        if body.get("reasoning") is not None:
            output.append({"id": f"rs_standin_{number}", "type": "reasoning", "summary": []})
        tool = _tool_to_call(body)
        if tool is not None:
            arguments = compact_json(tool_arguments(tool.get("parameters")))
            output.append(_function_call(number, tool["name"], arguments))
            return _Reply(output, tool_completion_tokens(tool["name"], arguments))
        user_text = _last_user_text(_items(body))
        if _web_search(body):
            action = {"type": "search", "query": user_text}
            output.append(
                {"id": f"ws_standin_{number}", "type": "web_search_call", "status": "completed", "action": action}
            )
        limit = body.get("max_output_tokens")
        text, cut = truncate(reply_text(scenario, user_text, body), limit if isinstance(limit, int) else None)
        output.append(_message(number, text, "incomplete" if cut else "completed"))
        return _Reply(output, word_count(text), cut)

    def _usage(self, scenario: Scenario, body: dict[str, Any], reply: _Reply) -> dict[str, Any]:
        cached = CACHE_READ_TOKENS if scenario.cache else 0
        reasoning = REASONING_TOKENS if body.get("reasoning") is not None else 0
        prompt = prompt_tokens(_texts(body)) + cached
        output = reply.output_tokens + reasoning
        return {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + output,
        }

    def _response(
        self, body: dict[str, Any], number: int, reply: _Reply, usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        created = int(time.time())
        reasoning = body.get("reasoning") or {}
        return {
            "id": f"resp_standin_{number}",
            "object": "response",
            "created_at": created,
            "status": "incomplete" if reply.incomplete else "completed",
            "completed_at": None if reply.incomplete else created,
            "background": False,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if reply.incomplete else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": body["model"],
            "output": reply.output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": usage,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }

    async def _frames(self, scenario: Scenario, entry: Logged, response: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        events = list(_events(response))
        for number, event in enumerate(events):
            if number == FRAMES_BEFORE_TROUBLE and scenario.stream_cut:
                raise StreamCut
            if number == FRAMES_BEFORE_TROUBLE and scenario.stream_error:
                error = {"type": "server_error", "code": "server_error", "message": "stand-in mid-stream failure"}
                yield sse_event(
                    "error", {"type": "error", "sequence_number": number, "error": {**error, "param": None}}
                )
                return
            if number and scenario.stream_slow:
                await anyio.sleep(STREAM_SLOW_DELAY)
            yield sse_event(event["type"], {"type": event["type"], "sequence_number": number, **event["fields"]})
        self.log.update(entry, usage=response["usage"])


def _message(number: int, text: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": f"msg_standin_{number}", "type": "message", "status": status, "role": "assistant", "content": [part]}


def _function_call(number: int, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": f"fc_standin_{number}",
        "type": "function_call",
        "status": "completed",
        "call_id": f"call_standin_{number}",
        "name": name,
        "arguments": arguments,
    }


# --- the stream's events -------------------------------------------------------------------------------


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "fields": fields}


def _events(response: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every event of a streamed response, in OpenAI's order, without sequence numbers."""
    opening = {**response, "status": "in_progress", "completed_at": None, "output": [], "usage": None}
    opening["incomplete_details"] = None
    yield _event("response.created", response=opening)
    yield _event("response.in_progress", response=opening)
    for index, item in enumerate(response["output"]):
        yield from _item_events(index, item)
    yield _event(
        "response.incomplete" if response["status"] == "incomplete" else "response.completed", response=response
    )


def _item_events(index: int, item: dict[str, Any]) -> Iterator[dict[str, Any]]:
    at = {"item_id": item["id"], "output_index": index}
    kind = item["type"]
    if kind == "message":
        yield _event(
            "response.output_item.added", output_index=index, item={**item, "status": "in_progress", "content": []}
        )
        for content_index, part in enumerate(item["content"]):
            yield from _text_events({**at, "content_index": content_index}, part)
    elif kind == "function_call":
        yield _event(
            "response.output_item.added", output_index=index, item={**item, "status": "in_progress", "arguments": ""}
        )
        for piece in split_in_parts(item["arguments"]):
            yield _event("response.function_call_arguments.delta", **at, delta=piece)
        yield _event("response.function_call_arguments.done", **at, arguments=item["arguments"])
    elif kind == "web_search_call":
        yield _event("response.output_item.added", output_index=index, item={**item, "status": "in_progress"})
        for stage in ("in_progress", "searching", "completed"):
            yield _event(f"response.web_search_call.{stage}", **at)
    else:
        yield _event("response.output_item.added", output_index=index, item=item)
    yield _event("response.output_item.done", output_index=index, item=item)


def _text_events(at: dict[str, Any], part: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield _event("response.content_part.added", **at, part={**part, "text": ""})
    for piece in pieces(part["text"]):
        yield _event("response.output_text.delta", **at, delta=piece, logprobs=[])
    yield _event("response.output_text.done", **at, text=part["text"], logprobs=[])
    yield _event("response.content_part.done", **at, part=part)
