"""OpenAI Responses API (`POST /v1/responses`): where the texts of a request and a response are.

Request: `instructions` (role `system`); `input` as a string (role `user`) or a list of items:
messages (`content` a string or parts whose `text` or `refusal` is scanned: `input_text`,
`output_text`, `refusal`; the item's role), `function_call.arguments` (JSON) and
`custom_tool_call.input` (role `assistant`), `function_call_output.output` and
`custom_tool_call_output.output` (a string or `input_text` parts; role `tool`, which is what
`scan_tool_results` reads). Reasoning items are not scanned on input: they are the provider's own
earlier output (guarded when it was produced), and it pairs their summaries with encrypted content.

Response: the `output` items: message parts (`output_text.text`, `refusal.refusal`),
`function_call.arguments` (JSON), `custom_tool_call.input`, and reasoning items' summary texts and
reasoning texts, which clients show to users. Tool names: function and custom tools by `name`,
hosted tools by `type` (`web_search`, `file_search`, `mcp`...), tools in a `namespace` by their own
names, and a forced `tool_choice`; a response's `function_call` and `custom_tool_call` items by name.
Hosted tool calls in a response are not judged again: a request cannot declare a refused one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from policies.guardrails.messages import Path, Slot

ItemText = tuple[str, int, Path, str]  # (channel kind, part or summary index, path inside the item, text)
CALL_ITEMS = ("function_call", "custom_tool_call")
_OUTPUTS = ("function_call_output", "custom_tool_call_output")


def request_slots(body: Mapping[str, Any]) -> list[Slot]:
    """Every text of a Responses request, in order."""
    slots: list[Slot] = []
    for key, role in (("instructions", "system"), ("input", "user")):
        value = body.get(key)
        if isinstance(value, str):
            slots.append(Slot((key,), value, role))
        elif isinstance(value, list):
            slots.extend(_input_items((key,), value))
    return slots


def _input_items(path: Path, items: list[Any]) -> Iterator[Slot]:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        here = (*path, i)
        kind = item.get("type")
        if kind == "message" or (kind is None and "role" in item):
            role = str(item.get("role") or "user")
            content = item.get("content")
            if isinstance(content, str):
                yield Slot((*here, "content"), content, role)
            elif isinstance(content, list):
                for j, part in enumerate(content):
                    if isinstance(part, dict):
                        for key in ("text", "refusal"):
                            if isinstance(part.get(key), str):
                                yield Slot((*here, "content", j, key), part[key], role)
        elif kind in CALL_ITEMS:
            key = "arguments" if kind == "function_call" else "input"
            if isinstance(item.get(key), str):
                yield Slot((*here, key), item[key], "assistant", json=kind == "function_call")
        elif kind in _OUTPUTS:
            output = item.get("output")
            if isinstance(output, str):
                yield Slot((*here, "output"), output, "tool")
            elif isinstance(output, list):
                for j, part in enumerate(output):
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        yield Slot((*here, "output", j, "text"), part["text"], "tool")


def item_texts(item: Mapping[str, Any]) -> Iterator[ItemText]:
    """The texts of one output item with the stream channel each belongs to: `text` and `refusal`
    (per content part), `args` (function call arguments, JSON), `input` (custom tool call input),
    `summary` and `reasoning` (per reasoning summary part and reasoning content part)."""
    kind = item.get("type")
    if kind == "message":
        for j, part in _dicts(item.get("content")):
            if isinstance(part.get("text"), str):
                yield "text", j, ("content", j, "text"), part["text"]
            if isinstance(part.get("refusal"), str):
                yield "refusal", j, ("content", j, "refusal"), part["refusal"]
    elif kind == "function_call" and isinstance(item.get("arguments"), str):
        yield "args", 0, ("arguments",), item["arguments"]
    elif kind == "custom_tool_call" and isinstance(item.get("input"), str):
        yield "input", 0, ("input",), item["input"]
    elif kind == "reasoning":
        for key, channel in (("summary", "summary"), ("content", "reasoning")):
            for k, part in _dicts(item.get(key)):
                if isinstance(part.get("text"), str):
                    yield channel, k, (key, k, "text"), part["text"]


def _dicts(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(value, list):
        for i, part in enumerate(value):
            if isinstance(part, dict):
                yield i, part


def response_slots(data: Mapping[str, Any]) -> list[Slot]:
    """Every text of a (non-streaming) Responses response object."""
    slots: list[Slot] = []
    for i, item in _dicts(data.get("output")):
        for channel, _, path, text in item_texts(item):
            slots.append(Slot(("output", i, *path), text, "assistant", json=channel == "args"))
    return slots


def redaction_extras(data: Mapping[str, Any], edited: Iterable[Path]) -> dict[Path, Any]:
    """A redacted `output_text` part loses its `logprobs` (they would spell out what was redacted)."""
    extras: dict[Path, Any] = {}
    for path in edited:
        if len(path) == 5 and path[2] == "content" and path[4] == "text":
            part = data["output"][path[1]]["content"][path[3]]
            if part.get("logprobs"):
                extras[(*path[:4], "logprobs")] = []
    return extras


def request_tool_names(body: Mapping[str, Any]) -> list[str]:
    """Tool names a request declares (`tools`) or forces (`tool_choice`)."""
    names: list[str] = []
    for tool in _dicts(body.get("tools")):
        names.extend(_names(tool[1]))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        names.extend(_names(choice))
    return [n for n in names if n]


def _names(tool: Mapping[str, Any]) -> list[str]:
    kind = str(tool.get("type") or "function")
    if kind in ("namespace", "allowed_tools"):  # a group of tools, or a choice among some of them
        return [_name(inner) for _, inner in _dicts(tool.get("tools"))]
    return [_name(tool)]


def _name(tool: Mapping[str, Any]) -> str:
    kind = str(tool.get("type") or "function")
    return str(tool.get("name") or "") if kind in ("function", "custom") else kind


def response_tool_names(data: Mapping[str, Any]) -> list[str]:
    """Tool names a (non-streaming) response calls."""
    return [n for _, item in _dicts(data.get("output")) if (n := call_name(item))]


def call_name(item: Mapping[str, Any]) -> str:
    """The tool a `function_call` or `custom_tool_call` item calls, else ""."""
    name = item.get("name")
    return name if item.get("type") in CALL_ITEMS and isinstance(name, str) else ""
