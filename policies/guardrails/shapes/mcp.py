"""Where the texts are in a Model Context Protocol tool call and in what a server answers (plain
dicts in MCP's wire shape, camelCase keys).

A tool call's texts are the string leaves of its `arguments` (values, not keys: keys name the
tool's parameters), written by the model (role `assistant`). A result's texts are tool output (role
`tool`, what `scan_tool_results` reads): `text` content blocks, the text of embedded resources, the
string leaves of `structuredContent`; the `contents` of a resource read; the text blocks of a
prompt's `messages`. Images, audio and blobs carry no text here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from policies.guardrails.messages import Path, Slot
from policies.guardrails.shapes.leaves import json_leaves


def call_slots(arguments: Mapping[str, Any]) -> list[Slot]:
    """Every text of a tool call's arguments, under the path `("arguments", ...)`."""
    return [Slot(path, text, "assistant") for path, text in json_leaves(dict(arguments), ("arguments",))]


def result_slots(result: Mapping[str, Any]) -> list[Slot]:
    """Every text of a tool result (`content`, `structuredContent`), resource read (`contents`) or
    prompt (`messages`), as tool output."""
    slots: list[Slot] = []
    content = result.get("content")
    if isinstance(content, list):
        for i, block in enumerate(content):
            slots.extend(_block_slots(("content", i), block))
    if "structuredContent" in result:
        slots.extend(Slot(p, t, "tool") for p, t in json_leaves(result["structuredContent"], ("structuredContent",)))
    contents = result.get("contents")
    if isinstance(contents, list):
        for i, item in enumerate(contents):
            if isinstance(item, dict) and isinstance(item.get("text"), str):
                slots.append(Slot(("contents", i, "text"), item["text"], "tool"))
    messages = result.get("messages")
    if isinstance(messages, list):
        for i, message in enumerate(messages):
            if isinstance(message, dict):
                slots.extend(_block_slots(("messages", i, "content"), message.get("content")))
    return slots


def _block_slots(path: Path, block: Any) -> Iterator[Slot]:
    if not isinstance(block, dict):
        return
    if block.get("type") == "text" and isinstance(block.get("text"), str):
        yield Slot((*path, "text"), block["text"], "tool")
    resource = block.get("resource")
    if block.get("type") == "resource" and isinstance(resource, dict) and isinstance(resource.get("text"), str):
        yield Slot((*path, "resource", "text"), resource["text"], "tool")
