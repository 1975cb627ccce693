"""The built-in mock provider: deterministic OpenAI-shaped answers, in-process, no key, no network.

It is labelled as what it is (its replies say so, `system_fingerprint` is `agentgw-mock`), and it
behaves enough like a model for an agent loop: it echoes, calls the first (or forced) tool with
arguments shaped by the tool's schema, answers tool results, honours `response_format`, `n`,
`max_tokens`, streaming and `stream_options.include_usage`, and serves embeddings.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import struct
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway.apis.base import Event
from gateway.errors import UpstreamStatusError
from gateway.metering.usage import Usage
from gateway.providers.base import Completion, EventStream, Provider, ProviderCall
from gateway.providers.config import MockProviderConfig

FINGERPRINT = "agentgw-mock"
PREFIX = "[agentgw mock] "
_TOKEN = re.compile(r"\w+|[^\w\s]")
_PIECE = re.compile(r"\S+\s*|\s+")
EMBEDDING_DIMENSIONS = 256
MAX_EMBEDDING_DIMENSIONS = 4096  # more than any real embedding model's


def count_tokens(text: str) -> int:
    """The mock's own tokenizer: words and punctuation marks. Deterministic, not tiktoken."""
    return len(_TOKEN.findall(text))


class MockProvider(Provider):
    def __init__(self, name: str, config: MockProviderConfig) -> None:
        super().__init__(name)
        self._latency = config.latency_ms / 1000
        self._chunk_delay = config.chunk_delay_ms / 1000

    @property
    def kind(self) -> str:
        return "mock"

    @property
    def apis(self) -> frozenset[str]:
        return frozenset({"chat", "embeddings"})

    async def complete(self, call: ProviderCall) -> Completion:
        if self._latency:
            await asyncio.sleep(self._latency)
        if call.api.name == "embeddings":
            data = _embeddings(call.body, call.target.upstream_model)
        else:
            data = _Reply(call.body, call.target.upstream_model).completion()
        return Completion(data, None, Usage.from_openai(data["usage"]))

    async def open_stream(self, call: ProviderCall) -> EventStream:
        if self._latency:
            await asyncio.sleep(self._latency)
        reply = _Reply(call.body, call.target.upstream_model)
        return EventStream(self._events(reply), _nothing)

    async def _events(self, reply: _Reply) -> AsyncIterator[Event]:
        chunks = reply.chunks()
        usage = Usage.from_openai(reply.usage())
        for i, data in enumerate(chunks):
            if self._chunk_delay:
                await asyncio.sleep(self._chunk_delay)
            yield Event(data, None, usage if i == len(chunks) - 1 else None)


async def _nothing() -> None:
    return None


class _Reply:
    """What the mock answers to one chat request."""

    def __init__(self, body: dict[str, Any], model: str) -> None:
        self.body = body
        self.model = model
        self.id = f"chatcmpl-mock-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.n = body.get("n") or 1
        self.limit = body.get("max_completion_tokens") or body.get("max_tokens")
        messages = body.get("messages") or []
        self.prompt_tokens = sum(3 + count_tokens(_text_of(m)) for m in messages) + 3
        self.content, self.tool_call = self._decide(messages)
        self.finish = "tool_calls" if self.tool_call else "stop"
        if self.content is not None and self.limit is not None:
            pieces = _PIECE.findall(self.content)
            kept, used = [], 0
            for piece in pieces:
                used += count_tokens(piece)
                if used > self.limit:
                    self.finish = "length"
                    break
                kept.append(piece)
            self.content = "".join(kept)
        self.completion_tokens = count_tokens(self.content or "") + (
            count_tokens(self.tool_call["function"]["name"] + self.tool_call["function"]["arguments"])
            if self.tool_call
            else 0
        )

    def _decide(self, messages: list[Any]) -> tuple[str | None, dict[str, Any] | None]:
        last = messages[-1] if messages else {}
        tools = self.body.get("tools") or []
        choice = self.body.get("tool_choice", "auto")
        if tools and choice != "none" and last.get("role") != "tool":
            tool = _pick_tool(tools, choice)
            if tool is not None:
                arguments = orjson.dumps(_sample(tool.get("function", {}).get("parameters") or {})).decode()
                call = {
                    "id": f"call_mock_{uuid.uuid4().hex[:16]}",
                    "type": "function",
                    "function": {"name": tool["function"]["name"], "arguments": arguments},
                }
                return None, call
        if last.get("role") == "tool":
            return f"{PREFIX}The tool returned: {_text_of(last)[:300]}", None
        said = next((_text_of(m) for m in reversed(messages) if m.get("role") == "user"), "")[:500]
        fmt = self.body.get("response_format") or {}
        if fmt.get("type") == "json_object":
            return orjson.dumps({"mock": True, "echo": said}).decode(), None
        if fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema") or {}
            return orjson.dumps(_sample(schema)).decode(), None
        return f"{PREFIX}This reply comes from agentgw's built-in mock provider. You said: {said}", None

    def _message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None}
        if self.tool_call:
            message["tool_calls"] = [self.tool_call]
        return message

    def usage(self) -> dict[str, Any]:
        return Usage(self.prompt_tokens, self.completion_tokens * self.n).to_openai()

    def completion(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": [
                {"index": i, "message": self._message(), "logprobs": None, "finish_reason": self.finish}
                for i in range(self.n)
            ],
            "usage": self.usage(),
        }

    def chunks(self) -> list[dict[str, Any]]:
        with_usage = bool((self.body.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if with_usage else {}
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if self.tool_call:
            fn = self.tool_call["function"]
            args = fn["arguments"]
            half = len(args) // 2
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": self.tool_call["id"],
                            "type": "function",
                            "function": {"name": fn["name"], "arguments": ""},
                        }
                    ]
                }
            )
            deltas += [
                {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
                for part in (args[:half], args[half:])
                if part
            ]
        else:
            deltas += [{"content": piece} for piece in _PIECE.findall(self.content or "")]
        out = []
        for delta in deltas:
            for i in range(self.n):
                out.append(self._chunk([{"index": i, "delta": delta, "logprobs": None, "finish_reason": None}], extra))
        out += [
            self._chunk([{"index": i, "delta": {}, "logprobs": None, "finish_reason": self.finish}], extra)
            for i in range(self.n)
        ]
        if with_usage:
            out.append(self._chunk([], {"usage": self.usage()}))
        return out

    def _chunk(self, choices: list[dict[str, Any]], extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
            **extra,
        }


def _text_of(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _pick_tool(tools: list[dict[str, Any]], choice: Any) -> dict[str, Any] | None:
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        return next((t for t in tools if t.get("function", {}).get("name") == wanted), None)
    return tools[0]


def _sample(schema: dict[str, Any]) -> Any:
    """A small value that fits a JSON schema: what the mock puts in tool arguments and JSON replies."""
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: _sample(sub if isinstance(sub, dict) else {}) for name, sub in props.items()}
    if kind == "array":
        return []
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "mock"


def _embeddings(body: dict[str, Any], model: str) -> dict[str, Any]:
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    dims = body.get("dimensions") or EMBEDDING_DIMENSIONS
    if dims > MAX_EMBEDDING_DIMENSIONS:  # the vectors are made on the event loop
        raise UpstreamStatusError(400, f"'dimensions' is at most {MAX_EMBEDDING_DIMENSIONS} for the mock, not {dims}")
    as_base64 = body.get("encoding_format") == "base64"
    data, tokens = [], 0
    for i, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        tokens += count_tokens(text) if isinstance(item, str) else len(item)
        vector = _vector(text, dims)
        embedding: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _vector(text: str, dims: int) -> list[float]:
    stream = b""
    counter = 0
    while len(stream) < dims * 2:
        stream += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [(int.from_bytes(stream[2 * i : 2 * i + 2], "little") / 32767.5) - 1.0 for i in range(dims)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
