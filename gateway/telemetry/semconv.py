"""A call's facts as OpenTelemetry GenAI semantic-convention attributes. Pure: no SDK, no I/O.

Attribute names come from `opentelemetry-semantic-conventions`; the gateway's own are `agentgw.*`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry.semconv._incubating.attributes import error_attributes as err
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.attributes import server_attributes as srv

from gateway.metering.usage import Usage

AttributeValue = str | bool | int | float | Sequence[str] | Sequence[int] | Sequence[float]

PROVIDER_NAMES = {"openai": "openai", "anthropic": "anthropic", "mock": "agentgw.mock"}

# request body field -> attribute, for the request parameters the conventions name
_REQUEST_PARAMS = {
    "temperature": ga.GEN_AI_REQUEST_TEMPERATURE,
    "top_p": ga.GEN_AI_REQUEST_TOP_P,
    "frequency_penalty": ga.GEN_AI_REQUEST_FREQUENCY_PENALTY,
    "presence_penalty": ga.GEN_AI_REQUEST_PRESENCE_PENALTY,
    "seed": ga.GEN_AI_REQUEST_SEED,
}


@dataclass(slots=True)
class CallFacts:
    """What is known about a call when its span ends."""

    operation: str  # chat | embeddings
    request_model: str
    body: Mapping[str, Any] = field(default_factory=dict)
    provider_kind: str | None = None  # openai | anthropic | mock
    provider: str | None = None  # the configured provider's name
    model: str | None = None  # the gateway model that answered
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: Sequence[str] = ()
    usage: Usage | None = None
    ttft_s: float | None = None
    server: tuple[str, int] | None = None
    session: str | None = None
    agent: str | None = None
    team: str | None = None
    task: str | None = None
    tags: Sequence[tuple[str, str]] = ()
    key_name: str | None = None
    route: str | None = None
    strategy: str | None = None
    rule: str | None = None
    downgraded: bool = False
    skipped: Sequence[str] = ()  # "model:reason" for candidates the router left out
    attempts: int = 0
    cost_nanos: int | None = None
    error_type: str | None = None
    status: int | None = None
    guardrails: Sequence[str] = ()  # "name:phase:action:entity,entity:count"
    budget_remaining_usd: Mapping[str, float] = field(default_factory=dict)


def span_name(operation: str, request_model: str) -> str:
    return f"{operation} {request_model}"


def provider_name(kind: str | None) -> str | None:
    return None if kind is None else PROVIDER_NAMES.get(kind, kind)


def call_attributes(facts: CallFacts) -> dict[str, AttributeValue]:
    """Every attribute the call span carries, from what the call did."""
    attrs: dict[str, AttributeValue] = {
        ga.GEN_AI_OPERATION_NAME: facts.operation,
        ga.GEN_AI_REQUEST_MODEL: facts.request_model,
    }
    _put(attrs, ga.GEN_AI_PROVIDER_NAME, provider_name(facts.provider_kind))
    _put(attrs, ga.GEN_AI_RESPONSE_MODEL, facts.response_model)
    _put(attrs, ga.GEN_AI_RESPONSE_ID, facts.response_id)
    if facts.finish_reasons:
        attrs[ga.GEN_AI_RESPONSE_FINISH_REASONS] = list(facts.finish_reasons)
    attrs.update(request_attributes(facts.body))
    if facts.usage is not None:
        u = facts.usage
        attrs[ga.GEN_AI_USAGE_INPUT_TOKENS] = u.input_tokens
        attrs[ga.GEN_AI_USAGE_OUTPUT_TOKENS] = u.output_tokens
        attrs[ga.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = u.cached_tokens
        attrs[ga.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = u.cache_write_tokens
        attrs[ga.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = u.reasoning_tokens
        attrs["agentgw.usage.estimated"] = u.estimated
    _put(attrs, ga.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, facts.ttft_s)
    _put(attrs, ga.GEN_AI_CONVERSATION_ID, facts.session)
    _put(attrs, ga.GEN_AI_AGENT_ID, facts.agent)
    if facts.server is not None:
        attrs[srv.SERVER_ADDRESS], attrs[srv.SERVER_PORT] = facts.server
    _put(attrs, err.ERROR_TYPE, facts.error_type)
    _put(attrs, "agentgw.team", facts.team)
    _put(attrs, "agentgw.task", facts.task)
    if facts.tags:
        attrs["agentgw.tags"] = [f"{k}={v}" for k, v in facts.tags]
    _put(attrs, "agentgw.key", facts.key_name)
    _put(attrs, "agentgw.provider", facts.provider)
    _put(attrs, "agentgw.model", facts.model)
    _put(attrs, "agentgw.route", facts.route)
    _put(attrs, "agentgw.route.strategy", facts.strategy)
    _put(attrs, "agentgw.route.rule", facts.rule)
    if facts.downgraded:
        attrs["agentgw.route.downgraded"] = True
    if facts.skipped:
        attrs["agentgw.route.skipped"] = list(facts.skipped)
    attrs["agentgw.attempts"] = facts.attempts
    if facts.cost_nanos is not None:
        attrs["agentgw.cost_usd"] = facts.cost_nanos / 1e9
    if facts.guardrails:
        attrs["agentgw.guardrails"] = list(facts.guardrails)
    for scope, remaining in facts.budget_remaining_usd.items():
        attrs[f"agentgw.budget.{scope}.remaining_usd"] = remaining
    _put(attrs, "http.response.status_code", facts.status)
    return attrs


def request_attributes(body: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """The request parameters the conventions name, from an OpenAI request body."""
    attrs: dict[str, AttributeValue] = {ga.GEN_AI_REQUEST_STREAM: body.get("stream") is True}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(max_tokens, int):
        attrs[ga.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    for name, attr in _REQUEST_PARAMS.items():
        value = body.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[attr] = value
    n = body.get("n")
    if isinstance(n, int) and n != 1:
        attrs[ga.GEN_AI_REQUEST_CHOICE_COUNT] = n
    stop = body.get("stop")
    if isinstance(stop, str):
        attrs[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        attrs[ga.GEN_AI_REQUEST_STOP_SEQUENCES] = stop
    if isinstance(body.get("encoding_format"), str):
        attrs[ga.GEN_AI_REQUEST_ENCODING_FORMATS] = [body["encoding_format"]]
    return attrs


def error_attributes(error_type: str) -> dict[str, AttributeValue]:
    """`error.type` for a span that failed (an upstream attempt)."""
    return {err.ERROR_TYPE: error_type}


def attempt_attributes(
    operation: str, model: str, provider_kind: str, server: tuple[str, int] | None, attempt: int
) -> dict[str, AttributeValue]:
    attrs: dict[str, AttributeValue] = {
        ga.GEN_AI_OPERATION_NAME: operation,
        ga.GEN_AI_REQUEST_MODEL: model,
        "agentgw.attempt": attempt,
    }
    _put(attrs, ga.GEN_AI_PROVIDER_NAME, provider_name(provider_kind))
    if server is not None:
        attrs[srv.SERVER_ADDRESS], attrs[srv.SERVER_PORT] = server
    return attrs


def input_messages(body: Mapping[str, Any], max_chars: int) -> str:
    """`gen_ai.input.messages`: the request's messages in the conventions' JSON shape."""
    messages = []
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        parts: list[dict[str, Any]] = []
        content = message.get("content")
        if isinstance(content, str):
            parts.append({"type": "text", "content": content})
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "text":
                    parts.append({"type": "text", "content": part.get("text", "")})
                elif isinstance(part, dict):
                    parts.append({"type": str(part.get("type", "unknown"))})
        for call in message.get("tool_calls") or ():
            function = (call.get("function") if isinstance(call, dict) else None) or {}
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments"),
                }
            )
        if message.get("role") == "tool":
            parts = [
                {
                    "type": "tool_call_response",
                    "id": message.get("tool_call_id"),
                    "response": content if isinstance(content, str) else parts,
                }
            ]
        messages.append({"role": message.get("role"), "parts": parts})
    if "input" in body and not messages:  # embeddings
        messages.append({"role": "user", "parts": [{"type": "text", "content": body["input"]}]})
    return truncate_json(messages, max_chars)


def output_messages(choices: Sequence[Mapping[str, Any]], max_chars: int) -> str:
    """`gen_ai.output.messages` from chat.completion choices (`message` objects)."""
    messages = []
    for choice in choices:
        message = choice.get("message") or {}
        parts: list[dict[str, Any]] = []
        if isinstance(message.get("content"), str):
            parts.append({"type": "text", "content": message["content"]})
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": function.get("name"),
                    "arguments": function.get("arguments"),
                }
            )
        messages.append({"role": "assistant", "parts": parts, "finish_reason": choice.get("finish_reason")})
    return truncate_json(messages, max_chars)


TRUNCATED = "...[truncated]"


def truncate_json(messages: list[dict[str, Any]], max_chars: int) -> str:
    """The messages as JSON of at most about `max_chars`, still valid JSON: long texts are cut
    first, then the oldest messages dropped."""
    text = orjson.dumps(messages).decode()
    if len(text) <= max_chars:
        return text
    parts = [p for m in messages for p in m["parts"]]
    budget = max(64, max_chars // max(1, len(parts)))
    for part in parts:
        for name in ("content", "arguments", "response"):
            value = part.get(name)
            if isinstance(value, str) and len(value) > budget:
                part[name] = value[:budget] + TRUNCATED
    text = orjson.dumps(messages).decode()
    while len(text) > max_chars and len(messages) > 1:
        messages = messages[1:]
        text = orjson.dumps(messages).decode()
    return text


def _put(attrs: dict[str, AttributeValue], name: str, value: AttributeValue | None) -> None:
    if value is not None:
        attrs[name] = value
