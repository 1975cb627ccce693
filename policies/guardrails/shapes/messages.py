"""Anthropic Messages API (`POST /v1/messages`): where the texts of a request and a response are.

Request: `system` (a string or text blocks; role `system`); each message's `content`, a string or
blocks: `text`; `tool_use.input` (and `server_tool_use.input`), a JSON object whose every string
leaf is its own text, so a redaction edits that value and the object stays an object; `tool_result`
content (a string, or text and document blocks; role `tool`, which `scan_tool_results` reads);
`document` blocks with a plain text source (`source.data`) or a content source. `thinking` and
`redacted_thinking` blocks are not scanned on input: the provider signed them when it produced them
(they passed the output guardrails then) and refuses a modified one.

Response: `content` blocks: `text`, `tool_use` / `server_tool_use` input leaves, and `thinking`,
which clients show to users. A redacted thinking block no longer matches its `signature`, so Anthropic
refuses it if the client sends it back in a tool-use loop: the leak is stopped at the cost of that
continuation (use a `flag` guardrail on the output phase to record instead).

Tool names: `tools[].name` (the `type` for a tool without one), a forced `tool_choice`
(`{"type": "tool", "name"}`), and a response's `tool_use` blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from policies.guardrails.messages import Path, Slot
from policies.guardrails.shapes.leaves import json_leaves

TOOL_USES = ("tool_use", "server_tool_use", "mcp_tool_use")


def request_slots(body: Mapping[str, Any]) -> list[Slot]:
    """Every text of a Messages request, in order."""
    slots: list[Slot] = []
    system = body.get("system")
    if isinstance(system, str):
        slots.append(Slot(("system",), system, "system"))
    else:
        slots.extend(_blocks(("system",), system, "system"))
    messages = body.get("messages")
    if isinstance(messages, list):
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                continue
            role = str(message.get("role") or "user")
            content = message.get("content")
            if isinstance(content, str):
                slots.append(Slot(("messages", i, "content"), content, role))
            else:
                slots.extend(_blocks(("messages", i, "content"), content, role))
    return slots


def _blocks(path: Path, blocks: Any, role: str) -> Iterator[Slot]:
    if not isinstance(blocks, list):
        return
    for j, block in enumerate(blocks):
        if not isinstance(block, dict):
            continue
        here = (*path, j)
        kind = block.get("type")
        if kind == "tool_result":
            content = block.get("content")
            if isinstance(content, str):
                yield Slot((*here, "content"), content, "tool")
            elif isinstance(content, list):
                for k, inner in enumerate(content):
                    if isinstance(inner, dict):
                        yield from _block((*here, "content", k), inner, "tool")
        else:
            yield from _block(here, block, role)


def _block(path: Path, block: Mapping[str, Any], role: str) -> Iterator[Slot]:
    """The texts of one block that is not a tool result (text, tool use, document)."""
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        yield Slot((*path, "text"), block["text"], role)
    elif kind in TOOL_USES:
        for leaf, text in json_leaves(block.get("input"), (*path, "input")):
            yield Slot(leaf, text, role)
    elif kind == "document":
        source = block.get("source")
        if not isinstance(source, dict):
            return
        if source.get("type") == "text" and isinstance(source.get("data"), str):
            yield Slot((*path, "source", "data"), source["data"], role)
        elif source.get("type") == "content":
            content = source.get("content")
            if isinstance(content, str):
                yield Slot((*path, "source", "content"), content, role)
            elif isinstance(content, list):
                for k, inner in enumerate(content):
                    if isinstance(inner, dict) and inner.get("type") == "text" and isinstance(inner.get("text"), str):
                        yield Slot((*path, "source", "content", k, "text"), inner["text"], role)


def response_slots(data: Mapping[str, Any]) -> list[Slot]:
    """Every text of a (non-streaming) Messages response."""
    slots: list[Slot] = []
    content = data.get("content")
    if not isinstance(content, list):
        return slots
    for j, block in enumerate(content):
        if not isinstance(block, dict):
            continue
        if block.get("type") == "thinking" and isinstance(block.get("thinking"), str):
            slots.append(Slot(("content", j, "thinking"), block["thinking"], "assistant"))
        else:
            slots.extend(_block(("content", j), block, "assistant"))
    return slots


def no_extras(data: Mapping[str, Any], edited: Iterable[Path]) -> dict[Path, Any]:
    """Messages responses carry nothing else that repeats a redacted text."""
    return {}


def request_tool_names(body: Mapping[str, Any]) -> list[str]:
    """Tool names a request declares (`tools`) or forces (`tool_choice` of type `tool`)."""
    names: list[str] = []
    tools = body.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, dict):
                names.append(str(tool.get("name") or tool.get("type") or ""))
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool":
        names.append(str(choice.get("name") or ""))
    return [n for n in names if n]


def response_tool_names(data: Mapping[str, Any]) -> list[str]:
    """Tool names a (non-streaming) response calls (`tool_use` blocks; server tools run at the
    provider and can only be ones the request declared)."""
    content = data.get("content")
    if not isinstance(content, list):
        return []
    return [
        block["name"]
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "tool_use"
        and isinstance(block.get("name"), str)
        and block["name"]
    ]
