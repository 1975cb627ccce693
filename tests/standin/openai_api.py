"""The OpenAI wire format: chat completions (plain, streamed, tools, n), embeddings, models."""

from __future__ import annotations

import base64
import hashlib
import itertools
import struct
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .log import Logged, RequestLog
from .responses import EventStream, StreamCut, entry_of, json_response, scripted_outcome, sse_data
from .scenario import (
    CACHE_READ_TOKENS,
    CONTEXT_TOO_LONG,
    LATE_END_SECONDS,
    STREAM_SLOW_DELAY,
    Scenario,
    compact_json,
    openai_prompt_tokens,
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

MODELS = [
    "gpt-x",
    "claude-x",
    "embed-x",
    "fail-400",
    "fail-401",
    "fail-429",
    "fail-500",
    "fail-503",
    "flaky-503",
    "not-json",
    "slow",
    "slow-1",
    "stream-cut",
    "stream-error",
    "stream-slow",
    "stream-late-end",
    "no-usage",
    "echo-request",
]
EMBEDDING_DIMENSIONS = 8
CHAT_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
FRAMES_BEFORE_TROUBLE = 3  # stream-cut / stream-error: role chunk + two content chunks

_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}


def openai_error(status: int, message: str | None = None, param: str | None = None) -> Response:
    kind, code = _ERROR_KINDS.get(status, ("server_error", None))
    if message == CONTEXT_TOO_LONG:
        message = "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens."
        code = "context_length_exceeded"
    if message is None:
        message = "bad param from stand-in" if status == 400 else f"stand-in scripted failure {status}"
    headers = {"retry-after": "1"} if status == 429 else None
    error = {"message": message, "type": kind, "param": param, "code": code}
    return json_response({"error": error}, status, headers)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text") or part.get("refusal") or "") for part in content if isinstance(part, dict)
        )
    return ""


def _message_texts(messages: list[dict[str, Any]]) -> Iterator[str]:
    for message in messages:
        text = _text_of(message.get("content"))
        for call in message.get("tool_calls") or []:
            function = (call.get("function") or {}) if isinstance(call, dict) else {}
            text += f" {function.get('name', '')} {function.get('arguments', '')}"
        yield text


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def _tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The `function` object of the tool the stand-in calls, or None to answer in text."""
    tools = [t["function"] for t in body.get("tools") or [] if isinstance(t, dict) and t.get("function")]
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none" or body["messages"][-1].get("role") in ("tool", "function"):
        return None
    if isinstance(choice, dict):
        forced = (choice.get("function") or {}).get("name")
        return next((tool for tool in tools if tool.get("name") == forced), tools[0])
    return tools[0]


@dataclass
class _Choice:
    index: int
    text: str | None = None
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    finish_reason: str = "stop"

    @property
    def completion_tokens(self) -> int:
        if self.text is None:
            return tool_completion_tokens(self.name, self.arguments)
        return word_count(self.text)

    def message(self) -> dict[str, Any]:
        if self.text is not None:
            return {"role": "assistant", "content": self.text, "refusal": None, "annotations": []}
        call = {
            "id": self.call_id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }
        return {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}

    def deltas(self) -> list[dict[str, Any]]:
        if self.text is not None:
            first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
            return [first] + [{"content": piece} for piece in pieces(self.text)]
        head = {
            "index": 0,
            "id": self.call_id,
            "type": "function",
            "function": {"name": self.name, "arguments": ""},
        }
        first = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [head]}
        rest = [
            {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
            for part in split_in_parts(self.arguments, 3)
        ]
        return [first, *rest]


class OpenAIWire:
    def __init__(self, log: RequestLog, ids: itertools.count[int]) -> None:
        self.log = log
        self.ids = ids

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
        ]

    async def models(self, request: Request) -> Response:
        data = [{"id": m, "object": "model", "created": 1700000000, "owned_by": "stand-in"} for m in MODELS]
        return json_response({"object": "list", "data": data})

    async def chat_completions(self, request: Request) -> Response:
        entry = entry_of(request)
        body = entry.body
        if body is None:
            return openai_error(400, "We could not parse the JSON body of your request.")
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter", "model")
        if not isinstance(messages, list) or not messages:
            return openai_error(400, "messages must be a non-empty array", "messages")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in CHAT_ROLES:
                return openai_error(400, f"Invalid value for 'messages[{i}].role'", f"messages[{i}].role")

        scenario = scenario_for(model)
        early = await scripted_outcome(request, self.log, scenario, openai_error)
        if early is not None:
            return early

        number = next(self.ids)
        choices = self._choices(scenario, body, number)
        usage = self._usage(scenario, messages, choices)
        self.log.update(entry, full_usage=usage)
        head = {
            "id": f"chatcmpl-standin-{number}",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_standin",
        }
        headers = {"x-request-id": f"req_standin_{number}"}
        if body.get("stream"):
            frames = self._frames(scenario, body, entry, head, choices, usage)
            return EventStream(frames, self.log, entry, headers, LATE_END_SECONDS if scenario.late_end else 0.0)

        reply: dict[str, Any] = {
            "id": head["id"],
            "object": "chat.completion",
            "created": head["created"],
            "model": model,
            "choices": [
                {"index": c.index, "message": c.message(), "logprobs": None, "finish_reason": c.finish_reason}
                for c in choices
            ],
            "system_fingerprint": head["system_fingerprint"],
            "service_tier": "default",
        }
        if not scenario.no_usage:
            reply["usage"] = usage
            self.log.update(entry, usage=usage)
        return json_response(reply, headers=headers)

    def _choices(self, scenario: Scenario, body: dict[str, Any], number: int) -> list[_Choice]:
        n = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 1 else 1
        tool = _tool_to_call(body)
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        choices = []
        for index in range(n):
            if tool is not None:
                arguments = compact_json(tool_arguments(tool.get("parameters")))
                call_id = f"call_standin_{number}_{index}"
                choices.append(_Choice(index, None, call_id, tool.get("name", ""), arguments, "tool_calls"))
                continue
            text = reply_text(scenario, _last_user_text(body["messages"]), body)
            if index:
                text += f" #{index}"
            text, cut = truncate(text, limit if isinstance(limit, int) else None)
            choices.append(_Choice(index, text, finish_reason="length" if cut else "stop"))
        return choices

    def _usage(self, scenario: Scenario, messages: list[dict[str, Any]], choices: list[_Choice]) -> dict[str, Any]:
        cached = CACHE_READ_TOKENS if scenario.cache else 0
        prompt = openai_prompt_tokens(messages) if scenario.counted else prompt_tokens(_message_texts(messages))
        prompt += cached
        completion = sum(choice.completion_tokens for choice in choices)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    async def _frames(
        self,
        scenario: Scenario,
        body: dict[str, Any],
        entry: Logged,
        head: dict[str, Any],
        choices: list[_Choice],
        usage: dict[str, Any],
    ) -> AsyncGenerator[bytes, None]:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage")) and not scenario.no_usage

        def chunk(choice_list: list[dict[str, Any]], chunk_usage: dict[str, Any] | None = None) -> bytes:
            payload = {"id": head["id"], "object": "chat.completion.chunk", "created": head["created"]}
            payload |= {"model": head["model"], "system_fingerprint": head["system_fingerprint"]}
            payload["choices"] = choice_list
            if include_usage:
                payload["usage"] = chunk_usage
            return sse_data(payload)

        def choice_delta(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

        frames: list[bytes] = []
        per_choice = [choice.deltas() for choice in choices]
        for step in range(max(len(deltas) for deltas in per_choice)):
            for choice, deltas in zip(choices, per_choice, strict=True):
                if step < len(deltas):
                    frames.append(chunk([choice_delta(choice.index, deltas[step])]))
        frames += [chunk([choice_delta(c.index, {}, c.finish_reason)]) for c in choices]

        for i, frame in enumerate(frames):
            if i == FRAMES_BEFORE_TROUBLE and scenario.stream_cut:
                raise StreamCut
            if i == FRAMES_BEFORE_TROUBLE and scenario.stream_error:
                yield sse_data({"error": {"message": "stand-in mid-stream failure", "type": "server_error"}})
                return
            if i and scenario.stream_slow:
                await anyio.sleep(STREAM_SLOW_DELAY)
            yield frame
        if include_usage:
            yield chunk([], usage)
            self.log.update(entry, usage=usage)
        yield b"data: [DONE]\n\n"

    async def embeddings(self, request: Request) -> Response:
        entry = entry_of(request)
        body = entry.body
        if body is None:
            return openai_error(400, "We could not parse the JSON body of your request.")
        model, items = body.get("model"), _embedding_inputs(body.get("input"))
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter", "model")
        if items is None:
            return openai_error(400, "'input' must be a string, an array of strings or of tokens", "input")

        scenario = scenario_for(model)
        early = await scripted_outcome(request, self.log, scenario, openai_error)
        if early is not None:
            return early

        dims = body.get("dimensions") if isinstance(body.get("dimensions"), int) else EMBEDDING_DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(items):
            vector = embedding_vector(model, item, dims)
            packed = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": packed if as_base64 else vector})
        tokens = sum(len(item) if isinstance(item, list) else max(1, word_count(item)) for item in items)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        self.log.update(entry, usage=usage, full_usage=usage)
        return json_response({"object": "list", "data": data, "model": model, "usage": usage})


def _embedding_inputs(value: Any) -> list[str | list[int]] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, int) for v in value):
            return [value]
        if all(isinstance(v, str) or (isinstance(v, list) and all(isinstance(t, int) for t in v)) for v in value):
            return value
    return None


def embedding_vector(model: str, item: str | list[int], dims: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """Deterministic float32-exact values in [-1, 1] for (model, input)."""
    seed = f"{model}\x00{compact_json(item)}".encode()
    raw = b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(dims // 32 + 1))
    values = [byte / 127.5 - 1.0 for byte in raw[:dims]]
    return list(struct.unpack(f"<{dims}f", struct.pack(f"<{dims}f", *values)))
