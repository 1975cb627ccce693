"""Anthropic Messages request -> Chat Completions request: a pure translation, no I/O.

`to_chat_request` validates as it goes: a malformed body or one Chat Completions cannot express
raises `TranslationError` whose `param` is the dotted path (`messages.0.content.1`, `tools.2`).
Fields with no chat counterpart that change nothing the client relies on are dropped
(`DROPPED_FIELDS`), as is any field this module does not know.
"""

from __future__ import annotations

from typing import Any

from gateway.translate.messages_to_chat.expect import (
    expect_bool,
    expect_int,
    expect_list,
    expect_number,
    expect_object,
    expect_str,
    refuse,
)
from gateway.translate.messages_to_chat.messages import chat_messages, system_messages

# Anthropic request fields dropped on the way to a chat model (documented in the README).
DROPPED_FIELDS = frozenset(
    {
        "cache_control",  # prompt caching markers, here and on any block or tool
        "container",  # only meaningful for Anthropic's code execution, which is refused
        "context_management",
        "diagnostics",
        "inference_geo",
        "service_tier",
        "speed",
        "thinking",  # the target model reasons (or not) as its own configuration says
        "top_k",
    }
)
CLIENT_TOOL_TYPES = (None, "custom")
SERVER_TOOL_REASON = "Anthropic server tools ('{kind}') run only on Anthropic; this model cannot use them"
_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def to_chat_request(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    """Translate an Anthropic Messages request body into a chat completion request for `model`.

    Raises `TranslationError` (with the dotted path as `param`) for a malformed body and for
    what chat cannot express: server tools, PDF and file documents, file images, MCP servers.
    """
    if body.get("mcp_servers"):
        raise refuse("mcp_servers", "MCP servers are called by Anthropic's API; this model cannot use them")
    out: dict[str, Any] = {
        "model": model,
        "messages": system_messages(body.get("system")) + chat_messages(body.get("messages")),
        "max_tokens": _max_tokens(body.get("max_tokens")),
    }
    out.update(_sampling(body))
    out.update(_tools(body))
    output_format = _output_format(body.get("output_config"))
    if output_format is not None:
        out["response_format"] = output_format
    if body.get("stream") is not None and expect_bool(body["stream"], "stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}  # the stream's usage ends up in message_delta
    return out


def _max_tokens(value: Any) -> int:
    if value is None:
        raise refuse("max_tokens", "is required")
    max_tokens = expect_int(value, "max_tokens")
    if max_tokens < 1:
        raise refuse("max_tokens", "must be at least 1 (cache pre-warming with 0 has no counterpart here)")
    return max_tokens


def _sampling(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    stop = body.get("stop_sequences")
    if stop is not None:
        sequences = [expect_str(s, f"stop_sequences.{i}") for i, s in enumerate(expect_list(stop, "stop_sequences"))]
        if sequences:
            out["stop"] = sequences
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = expect_number(body[name], name)
    metadata = body.get("metadata")
    if metadata is not None:
        user_id = expect_object(metadata, "metadata").get("user_id")
        if user_id is not None:
            out["user"] = expect_str(user_id, "metadata.user_id")
    return out


# --- tools --------------------------------------------------------------------------------------


def _tools(body: dict[str, Any]) -> dict[str, Any]:
    """`tools`, `tool_choice` and `parallel_tool_calls`; the choice is dropped without tools, as
    chat servers reject a tool_choice with no tools."""
    if body.get("tools") is None:
        return {}
    tools = [_function_tool(tool, f"tools.{i}") for i, tool in enumerate(expect_list(body["tools"], "tools"))]
    if not tools:
        return {}
    out: dict[str, Any] = {"tools": tools}
    if body.get("tool_choice") is not None:
        out.update(_tool_choice(expect_object(body["tool_choice"], "tool_choice")))
    return out


def _function_tool(tool: Any, path: str) -> dict[str, Any]:
    tool = expect_object(tool, path)
    kind = tool.get("type")
    if kind not in CLIENT_TOOL_TYPES:
        raise refuse(path, SERVER_TOOL_REASON.format(kind=expect_str(kind, f"{path}.type")))
    function: dict[str, Any] = {"name": expect_str(tool.get("name"), f"{path}.name")}
    if tool.get("description") is not None:
        function["description"] = expect_str(tool["description"], f"{path}.description")
    function["parameters"] = expect_object(tool.get("input_schema"), f"{path}.input_schema")
    return {"type": "function", "function": function}


def _tool_choice(choice: dict[str, Any]) -> dict[str, Any]:
    kind = expect_str(choice.get("type"), "tool_choice.type")
    if kind == "tool":
        name = expect_str(choice.get("name"), "tool_choice.name")
        out: dict[str, Any] = {"tool_choice": {"type": "function", "function": {"name": name}}}
    elif kind in _TOOL_CHOICES:
        out = {"tool_choice": _TOOL_CHOICES[kind]}
    else:
        raise refuse("tool_choice.type", f"unknown tool_choice type '{kind}'")
    disable = choice.get("disable_parallel_tool_use")
    if kind != "none" and disable is not None and expect_bool(disable, "tool_choice.disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out


# --- structured output --------------------------------------------------------------------------


def _output_format(config: Any) -> dict[str, Any] | None:
    """`output_config.format` (a JSON schema) as a json_schema `response_format`; `effort` is dropped."""
    if config is None:
        return None
    output_format = expect_object(config, "output_config").get("format")
    if output_format is None:
        return None
    output_format = expect_object(output_format, "output_config.format")
    kind = expect_str(output_format.get("type"), "output_config.format.type")
    if kind != "json_schema":
        raise refuse("output_config.format.type", f"unknown output format '{kind}'")
    schema = expect_object(output_format.get("schema"), "output_config.format.schema")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
