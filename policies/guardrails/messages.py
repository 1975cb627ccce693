"""Walking OpenAI-shaped requests and responses: every text a guardrail must see, and where it lives.

A `Slot` is one text with its path in the body (keys and list indexes) and the role of the message it
belongs to. Scanned: string content, text parts of content lists (images, audio and files are left
alone), refusals, assistant tool-call arguments (JSON, `json=True`) and custom tool inputs, legacy
`function_call` arguments, tool and function results, system and developer prompts, and the
embeddings `input` (a string or a list of strings; token arrays carry no text).

`with_edits` writes new texts back by copying only the containers on the edited paths, so the body
the caller passed is never mutated and untouched parts are shared.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Slot:
    """One text in a body: where it is, what it says, which role wrote it, and whether it is JSON."""

    path: Path
    text: str
    role: str
    json: bool = False


def request_slots(body: Mapping[str, Any]) -> list[Slot]:
    """Every text of a chat completion request, in message order."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return []
    slots: list[Slot] = []
    for i, message in enumerate(messages):
        if isinstance(message, dict):
            slots.extend(_message_slots(("messages", i), message, str(message.get("role") or "user")))
    return slots


def response_slots(data: Mapping[str, Any]) -> list[Slot]:
    """Every text of a (non-streaming) chat completion response."""
    choices = data.get("choices")
    if not isinstance(choices, list):
        return []
    slots: list[Slot] = []
    for i, choice in enumerate(choices):
        if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
            slots.extend(_message_slots(("choices", i, "message"), choice["message"], "assistant"))
    return slots


def embedding_slots(body: Mapping[str, Any]) -> list[Slot]:
    """The texts of an embeddings request."""
    value = body.get("input")
    if isinstance(value, str):
        return [Slot(("input",), value, "user")]
    if isinstance(value, list):
        return [Slot(("input", i), item, "user") for i, item in enumerate(value) if isinstance(item, str)]
    return []


def _message_slots(path: Path, message: Mapping[str, Any], role: str) -> Iterator[Slot]:
    content = message.get("content")
    if isinstance(content, str):
        yield Slot((*path, "content"), content, role)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if isinstance(part, dict):
                for key in ("text", "refusal"):
                    if isinstance(part.get(key), str):
                        yield Slot((*path, "content", j, key), part[key], role)
    if isinstance(message.get("refusal"), str):
        yield Slot((*path, "refusal"), message["refusal"], role)
    tool_calls = message.get("tool_calls")
    if isinstance(tool_calls, list):
        for k, call in enumerate(tool_calls):
            if not isinstance(call, dict):
                continue
            function = call.get("function")
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                yield Slot((*path, "tool_calls", k, "function", "arguments"), function["arguments"], role, json=True)
            custom = call.get("custom")
            if isinstance(custom, dict) and isinstance(custom.get("input"), str):
                yield Slot((*path, "tool_calls", k, "custom", "input"), custom["input"], role)
    function_call = message.get("function_call")
    if isinstance(function_call, dict) and isinstance(function_call.get("arguments"), str):
        yield Slot((*path, "function_call", "arguments"), function_call["arguments"], role, json=True)


def request_tool_names(body: Mapping[str, Any]) -> list[str]:
    """Tool names a request declares (`tools`, legacy `functions`) or forces (`tool_choice`)."""
    names: list[str] = []
    tools = body.get("tools")
    if isinstance(tools, list):
        for tool in tools:
            if isinstance(tool, dict):
                names.append(_tool_name(tool))
    functions = body.get("functions")
    if isinstance(functions, list):
        names.extend(str(f.get("name", "")) for f in functions if isinstance(f, dict))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        names.append(_tool_name(choice))
    return [n for n in names if n]


def response_tool_names(data: Mapping[str, Any]) -> list[str]:
    """Tool names a (non-streaming) response calls."""
    names: list[str] = []
    for choice in data.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        for call in message.get("tool_calls") or ():
            if isinstance(call, dict):
                names.append(_tool_name(call))
        function_call = message.get("function_call")
        if isinstance(function_call, dict):
            names.append(str(function_call.get("name") or ""))
    return [n for n in names if n]


def _tool_name(tool: Mapping[str, Any]) -> str:
    """`function.name` / `custom.name`, else the tool type itself (`web_search`, `file_search`...)."""
    kind = str(tool.get("type") or "function")
    inner = tool.get(kind) if kind in ("function", "custom") else None
    if isinstance(inner, dict) and inner.get("name"):
        return str(inner["name"])
    return kind if kind not in ("function", "custom") else ""


def with_edits(body: Any, edits: Mapping[Path, Any]) -> Any:
    """A copy of `body` with each path set to its new value; only containers on those paths are copied."""
    if not edits:
        return body
    root = _copy(body)
    copied: dict[Path, Any] = {(): root}
    for path, value in edits.items():
        node = root
        for depth, key in enumerate(path[:-1]):
            prefix = path[: depth + 1]
            child = copied.get(prefix)
            if child is None:
                child = _copy(node[key])
                node[key] = child
                copied[prefix] = child
            node = child
        node[path[-1]] = value
    return root


def _copy(node: Any) -> Any:
    if isinstance(node, dict):
        return dict(node)
    if isinstance(node, list):
        return list(node)
    return node
