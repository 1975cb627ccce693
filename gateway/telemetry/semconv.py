"""A call's facts as OpenTelemetry GenAI semantic-convention attributes. Pure: no SDK, no I/O.

Attribute names come from `opentelemetry-semantic-conventions`; the gateway's own are `agentgw.*`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from opentelemetry.semconv._incubating.attributes import error_attributes as err
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as ga
from opentelemetry.semconv._incubating.attributes import server_attributes as srv

if TYPE_CHECKING:
    from gateway.mcp.record import ToolCallRecord
    from gateway.pipeline.call import CallRecord

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


def span_name(operation: str, request_model: str) -> str:
    return f"{operation} {request_model}"


def provider_name(kind: str | None) -> str | None:
    return None if kind is None else PROVIDER_NAMES.get(kind, kind)


def call_attributes(record: CallRecord) -> dict[str, AttributeValue]:
    """Every attribute the call span carries, from the call's record."""
    ctx = record.ctx
    attrs: dict[str, AttributeValue] = {
        ga.GEN_AI_OPERATION_NAME: record.api.operation,
        ga.GEN_AI_REQUEST_MODEL: record.request.model,
        "agentgw.api": record.api.name,
    }
    _put(attrs, ga.GEN_AI_PROVIDER_NAME, provider_name(record.provider_kind))
    _put(attrs, ga.GEN_AI_RESPONSE_MODEL, record.response_model)
    _put(attrs, ga.GEN_AI_RESPONSE_ID, record.response_id)
    if record.finish_reasons:
        attrs[ga.GEN_AI_RESPONSE_FINISH_REASONS] = list(record.finish_reasons)
    attrs.update(request_attributes(record.body))
    if record.usage is not None:
        u = record.usage
        attrs[ga.GEN_AI_USAGE_INPUT_TOKENS] = u.input_tokens
        attrs[ga.GEN_AI_USAGE_OUTPUT_TOKENS] = u.output_tokens
        attrs[ga.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = u.cached_tokens
        attrs[ga.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = u.cache_write_tokens
        attrs[ga.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = u.reasoning_tokens
        attrs["agentgw.usage.estimated"] = u.estimated
    _put(attrs, ga.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, record.ttft_s)
    _put(attrs, ga.GEN_AI_CONVERSATION_ID, ctx.session)
    _put(attrs, ga.GEN_AI_AGENT_ID, ctx.agent)
    _put(attrs, ga.GEN_AI_AGENT_VERSION, record.agent_version)
    if record.server is not None:
        attrs[srv.SERVER_ADDRESS], attrs[srv.SERVER_PORT] = record.server
    _put(attrs, err.ERROR_TYPE, record.error_type)
    _put(attrs, "agentgw.team", ctx.team)
    _put(attrs, "agentgw.task", ctx.task)
    if ctx.tags:
        attrs["agentgw.tags"] = [f"{k}={v}" for k, v in ctx.tags]
    _put(attrs, "agentgw.key", ctx.key_name)
    _put(attrs, "agentgw.provider", record.provider)
    _put(attrs, "agentgw.model", record.model)
    if record.translated:
        attrs["agentgw.translated"] = True
    _put(attrs, "agentgw.route", record.route)
    _put(attrs, "agentgw.route.strategy", record.strategy)
    _put(attrs, "agentgw.route.rule", record.rule)
    if record.downgraded:
        attrs["agentgw.route.downgraded"] = True
    if record.skipped:
        attrs["agentgw.route.skipped"] = list(record.skipped)
    attrs["agentgw.attempts"] = record.attempts
    if record.admitted:
        attrs["agentgw.cost_usd"] = record.cost_nanos / 1e9
    if record.verdicts:
        attrs["agentgw.guardrails"] = guardrail_labels(record.verdicts)
    for scope, remaining in record.budget_remaining_usd.items():
        attrs[f"agentgw.budget.{scope}.remaining_usd"] = remaining
    _put(attrs, "http.response.status_code", record.status)
    _put(attrs, "gen_ai.input.messages", record.input_messages)
    _put(attrs, "gen_ai.output.messages", record.output_messages)
    attrs["agentgw.outcome"] = record.outcome  # ok | error | client_disconnected (not an error of ours)
    return attrs


EXECUTE_TOOL = "execute_tool"
TOOL_TYPE = "extension"  # the conventions' kind for a tool that calls out of the agent (MCP's are)


def tool_span_name(tool: str) -> str:
    """A tool call's span: `execute_tool {gen_ai.tool.name}`."""
    return f"{EXECUTE_TOOL} {tool}"


def tool_call_attributes(record: ToolCallRecord) -> dict[str, AttributeValue]:
    """Every attribute a tool call's span carries: the GenAI `execute_tool` span's, MCP's server-side
    ones (`mcp.method.name`, `mcp.protocol.version`, `mcp.session.id`, `jsonrpc.request.id`), and the
    gateway's own."""
    ctx = record.ctx
    attrs: dict[str, AttributeValue] = {
        ga.GEN_AI_OPERATION_NAME: EXECUTE_TOOL,
        ga.GEN_AI_TOOL_NAME: record.name,
        ga.GEN_AI_TOOL_CALL_ID: ctx.request_id,
        ga.GEN_AI_TOOL_TYPE: TOOL_TYPE,
        "mcp.method.name": "tools/call",
    }
    _put(attrs, "mcp.protocol.version", record.rpc.protocol_version)
    _put(attrs, "mcp.session.id", record.rpc.session_id)
    _put(attrs, "jsonrpc.request.id", record.rpc.request_id)
    _put(attrs, ga.GEN_AI_CONVERSATION_ID, ctx.session)
    _put(attrs, ga.GEN_AI_AGENT_ID, ctx.agent)
    _put(attrs, err.ERROR_TYPE, record.error_type)
    if record.rpc_code is not None:
        attrs["rpc.response.status_code"] = str(record.rpc_code)
    _put(attrs, "agentgw.mcp.server", record.server)
    _put(attrs, "agentgw.mcp.tool", record.tool)
    _put(attrs, "agentgw.team", ctx.team)
    _put(attrs, "agentgw.task", ctx.task)
    if ctx.tags:
        attrs["agentgw.tags"] = [f"{k}={v}" for k, v in ctx.tags]
    _put(attrs, "agentgw.key", ctx.key_name)
    if record.admitted:
        attrs["agentgw.cost_usd"] = record.cost_nanos / 1e9
    _put(attrs, "agentgw.bytes_in", record.bytes_in)
    _put(attrs, "agentgw.bytes_out", record.bytes_out)
    if record.verdicts:
        attrs["agentgw.guardrails"] = guardrail_labels(record.verdicts)
    for scope, remaining in record.budget_remaining_usd.items():
        attrs[f"agentgw.budget.{scope}.remaining_usd"] = remaining
    _put(attrs, ga.GEN_AI_TOOL_CALL_ARGUMENTS, record.arguments)
    _put(attrs, ga.GEN_AI_TOOL_CALL_RESULT, record.result)
    attrs["agentgw.outcome"] = record.outcome
    return attrs


def tool_upstream_attributes(
    server: str, tool: str, address: tuple[str, int] | None, transport: str
) -> dict[str, AttributeValue]:
    """The span of the gateway's own request to the upstream server (MCP's client span), whose context
    the server receives in `params._meta.traceparent`."""
    attrs: dict[str, AttributeValue] = {
        "mcp.method.name": "tools/call",
        ga.GEN_AI_OPERATION_NAME: EXECUTE_TOOL,
        ga.GEN_AI_TOOL_NAME: tool,
        "network.transport": transport,
        "agentgw.mcp.server": server,
    }
    if address is not None:
        attrs[srv.SERVER_ADDRESS], attrs[srv.SERVER_PORT] = address
    return attrs


def guardrail_labels(verdicts: Sequence[Any]) -> list[str]:
    """`name:phase:action:entity,entity:count` per verdict, and `:score` for a scored one (prompt injection)."""
    labels = []
    for v in verdicts:
        label = f"{v.guardrail}:{v.phase}:{v.action}:{','.join(v.entities)}:{v.count}"
        labels.append(label if v.score is None else f"{label}:{v.score:.3f}")
    return labels


def request_attributes(body: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """The request parameters the conventions name, from a request body of any of the APIs."""
    attrs: dict[str, AttributeValue] = {ga.GEN_AI_REQUEST_STREAM: body.get("stream") is True}
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens")
    if isinstance(max_tokens, int):
        attrs[ga.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    top_k = body.get("top_k")
    if isinstance(top_k, int) and not isinstance(top_k, bool):
        attrs[ga.GEN_AI_REQUEST_TOP_K] = top_k
    for name, attr in _REQUEST_PARAMS.items():
        value = body.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attrs[attr] = value
    n = body.get("n")
    if isinstance(n, int) and n != 1:
        attrs[ga.GEN_AI_REQUEST_CHOICE_COUNT] = n
    stop = body.get("stop") if "stop" in body else body.get("stop_sequences")
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
MIN_TEXT_SHARE = 64  # a text is never cut shorter than this to make room for the others
_WALK_DEPTH = 16  # captured messages nest a few levels; anything deeper is kept as it is
_END = object()


def truncate_json(messages: Sequence[Mapping[str, Any]], max_chars: int) -> str:
    """The messages as JSON of at most `max_chars` characters, always valid JSON.

    When they do not fit, every text is cut to an equal share of the room (never below
    `MIN_TEXT_SHARE`) and the oldest messages are dropped; when even the newest one does not fit
    alone, it keeps the parts that fit and ends with one cut short. Messages are visited newest
    first and only until the room is full, each serialised at most twice: the work is linear in the
    size of the messages, and bounded by `max_chars` plus the one message or part that overflows.
    """
    pieces: list[str] = []
    room = max_chars - 2  # the brackets
    for message in reversed(messages):
        piece = _dumps(message)
        need = len(piece) + (1 if pieces else 0)
        if need > room:
            break
        pieces.append(piece)
        room -= need
    else:
        return "[" + ",".join(reversed(pieces)) + "]"
    texts = _count_texts(reversed(messages), limit=max_chars // MIN_TEXT_SHARE + 1)
    share = max(MIN_TEXT_SHARE, max_chars // max(1, texts))
    pieces, room = [], max_chars - 2
    for message in reversed(messages):
        comma = 1 if pieces else 0
        fitted, whole = _fit_message(message, room - comma, share, partial=not pieces)
        if fitted is None:
            break
        pieces.append(fitted)
        room -= len(fitted) + comma
        if not whole:
            break
    return "[" + ",".join(reversed(pieces)) + "]"


def _fit_message(message: Mapping[str, Any], room: int, share: int, *, partial: bool) -> tuple[str | None, bool]:
    """The message, its texts cut to `share`, as JSON of at most `room` characters, and whether it is
    whole. With `partial`, a message that does not fit keeps the parts that do, then the first that
    does not as a text part cut short (its own text, or its JSON); (None, False) when nothing fits."""
    parts = message.get("parts")
    if not isinstance(parts, list):
        piece = _dumps(_cut_texts(message, share, 0))
        return (piece, True) if len(piece) <= room else (None, False)
    head, _, tail = _dumps(_cut_texts({**message, "parts": []}, share, 0)).partition('"parts":[]')
    room -= len(head) + len('"parts":[]') + len(tail)
    if room < 0:
        return None, False
    kept: list[str] = []
    wrapper = '{"type":"text","content":}'
    # with `partial`, room is kept for the part cut short, so that a cut always shows
    reserve = len(wrapper) + 2 + len(TRUNCATED) + 1 if partial else 0
    for index, part in enumerate(parts):
        piece = _dumps(_cut_texts(part, share, 1))
        comma = 1 if kept else 0
        last = index == len(parts) - 1
        if len(piece) + comma <= room - (0 if last else reserve):
            kept.append(piece)
            room -= len(piece) + comma
            continue
        if not partial:
            return None, False
        content = part.get("content") if isinstance(part, dict) else None
        cut = _cut_json_string(content if isinstance(content, str) else piece, room - comma - len(wrapper))
        if cut is not None:
            kept.append(wrapper[:-1] + cut + "}")
        return f'{head}"parts":[{",".join(kept)}]{tail}', False
    return f'{head}"parts":[{",".join(kept)}]{tail}', True


def _cut_json_string(value: str, room: int) -> str | None:
    """`value` cut and marked so that its JSON string (quotes and escapes included) takes at most
    `room` characters; None when not even the marker fits."""
    keep = room - 2 - len(TRUNCATED)
    if keep < 0:
        return None
    text = _dumps(value[:keep] + TRUNCATED)
    excess = len(text) - room
    if excess > 0:  # escapes made it longer; every character dropped shortens it by at least one
        text = _dumps(value[: max(0, keep - excess)] + TRUNCATED)
    return text


def _count_texts(values: Iterator[Any], limit: int) -> int:
    """How many strings `values` hold, nested or not, counting no further than `limit`."""
    count = 0
    stack = [values]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, str):
            count += 1
            if count >= limit:
                break
        elif len(stack) <= _WALK_DEPTH and isinstance(item, dict):
            stack.append(iter(item.values()))
        elif len(stack) <= _WALK_DEPTH and isinstance(item, list) and not _only_numbers(item):
            stack.append(iter(item))
    return count


def _cut_texts(value: Any, share: int, depth: int) -> Any:
    """A copy of `value` with every string longer than `share` cut (the caller's body is not touched)."""
    if isinstance(value, str):
        return value[:share] + TRUNCATED if len(value) > share else value
    if depth >= _WALK_DEPTH or _only_numbers(value):
        return value
    if isinstance(value, dict):
        return {key: _cut_texts(item, share, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_cut_texts(item, share, depth + 1) for item in value]
    return value


_NUMBERS = frozenset({int, float, bool, type(None)})


def _only_numbers(value: Any) -> bool:
    """A list holding no text and no containers (a token array, an embedding), told at C speed."""
    return isinstance(value, list) and set(map(type, value)) <= _NUMBERS


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _put(attrs: dict[str, AttributeValue], name: str, value: AttributeValue | None) -> None:
    if value is not None:
        attrs[name] = value
