"""Responses request -> chat completion request: a pure translation, no I/O.

`to_chat_request` takes a `POST /v1/responses` body and returns the body for
`POST /v1/chat/completions`. What Chat Completions cannot express raises `TranslationError` with a
dotted path (`input.3`, `tools.0`, `previous_response_id`); its message is shown to the client as
is and never repeats user content.

    instructions                      a system message, first
    input (string)                    one user message
    message items                     messages; developer -> system; input_text -> text parts,
                                      input_image (a URL) -> image_url parts, an input_file holding
                                      a text file inline -> a text part; assistant text joined
    function_call items               tool_calls of one assistant message (with the text before)
    function_call_output items        tool messages (text only)
    reasoning items                   dropped: chat cannot carry them back
    tools (function)                  chat function tools (name, description, parameters, strict)
    tool_choice                       the same modes; a function by name; allowed_tools -> only
                                      those tools are sent, with its mode
    text.format / text.verbosity      response_format / verbosity
    max_output_tokens                 max_tokens
    reasoning.effort                  reasoning_effort
    temperature, top_p, user,
    parallel_tool_calls               as they are (tool_choice and parallel_tool_calls only with tools)
    stream                            stream, with stream_options.include_usage

The target keeps no state, so everything that refers to something OpenAI stored (a previous
response, a conversation, a prompt template, a file id, an item reference) is refused rather than
silently forgotten. Hosted tools (and their items in input) run inside OpenAI's Responses API and
are refused too. The fields in `DROPPED_RESPONSES_FIELDS`, and any this module does not know, are
dropped.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

from gateway.translate.base import TranslationError

# Request fields with no chat counterpart that change nothing the client can rely on; dropped, as
# is any field this module does not know. `background: false` is dropped too (true is refused).
DROPPED_RESPONSES_FIELDS = frozenset(
    {
        "background",
        "include",
        "max_tool_calls",
        "metadata",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
        "service_tier",
        "store",
        "stream_options",
        "top_logprobs",
        "truncation",
    }
)

_STATELESS = "; this model is served over Chat Completions, which keeps no state"

# Parameters that point at state OpenAI keeps; the translated call has none, so they are refused.
STATEFUL_PARAMS: dict[str, str] = {
    "previous_response_id": "previous_response_id continues a conversation stored by OpenAI's Responses API"
    + _STATELESS
    + ": send the whole conversation in input",
    "conversation": "conversation refers to a conversation stored by OpenAI's Responses API"
    + _STATELESS
    + ": send the whole conversation in input",
    "prompt": "prompt refers to a prompt template stored by OpenAI" + _STATELESS + ": send instructions and input",
    "background": "Background responses run only on OpenAI's Responses API" + _STATELESS,
}

TOOL_CHOICE_MODES = frozenset({"auto", "none", "required"})
IMAGE_DETAILS = frozenset({"auto", "low", "high"})
TEXT_FILE_TYPES = re.compile(r"text/[\w.+-]+|application/(?:json|ld\+json|xml|x-yaml|yaml|x-ndjson|csv|sql|toml)")

_DATA_URL = re.compile(r"data:(?P<media>[\w.+-]+/[\w.+-]+)(?:;[\w.+-]+=[\w.+-]+)*;base64,(?P<data>.*)", re.DOTALL)
_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}

Message = dict[str, Any]
Part = dict[str, Any]


def to_chat_request(body: dict[str, Any], *, model: str) -> dict[str, Any]:
    """Translate a Responses request into a chat completion request for the upstream `model`.

    Raises `TranslationError` naming the parameter for anything Chat Completions cannot express and
    for malformed input.
    """
    if not isinstance(body, dict):
        raise TranslationError("The request body must be a JSON object")
    _refuse_stateful(body)
    out: dict[str, Any] = {"model": model, "messages": _messages(body)}
    tools = _tools(body.get("tools"))
    tool_choice, tools = _tool_choice(body.get("tool_choice"), tools)
    if tools:  # chat refuses tool_choice and parallel_tool_calls without tools
        out["tools"] = tools
        if tool_choice is not None:
            out["tool_choice"] = tool_choice
        parallel = _optional(body, "parallel_tool_calls", bool, "a boolean")
        if parallel is not None:
            out["parallel_tool_calls"] = parallel
    _copy_sampling(body, out)
    _copy_reasoning(body.get("reasoning"), out)
    _copy_text(body.get("text"), out)
    stream = _optional(body, "stream", bool, "a boolean")
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


# --- plain parameters -----------------------------------------------------------------------------


def _refuse_stateful(body: dict[str, Any]) -> None:
    for name, message in STATEFUL_PARAMS.items():
        if body.get(name) not in (None, False):  # background: false asks for nothing
            raise TranslationError(message, name)


def _copy_sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    max_tokens = _optional(body, "max_output_tokens", int, "an integer")
    if max_tokens is not None:
        if max_tokens < 1:
            raise TranslationError("max_output_tokens must be at least 1", "max_output_tokens")
        out["max_tokens"] = max_tokens
    for name in ("temperature", "top_p"):
        value = _optional(body, name, (int, float), "a number")
        if value is not None:
            out[name] = value
    user = _optional(body, "user", str, "a string")
    if user is not None:
        out["user"] = user


def _copy_reasoning(reasoning: Any, out: dict[str, Any]) -> None:
    """`reasoning.effort` becomes `reasoning_effort`; summaries have no chat counterpart."""
    if reasoning is None:
        return
    effort = _optional(_mapping(reasoning, "reasoning"), "effort", str, "a string", "reasoning.effort")
    if effort is not None:
        out["reasoning_effort"] = effort


def _copy_text(text: Any, out: dict[str, Any]) -> None:
    if text is None:
        return
    options = _mapping(text, "text")
    if options.get("format") is not None:
        response_format = _response_format(_mapping(options["format"], "text.format"))
        if response_format is not None:
            out["response_format"] = response_format
    verbosity = _optional(options, "verbosity", str, "a string", "text.verbosity")
    if verbosity is not None:
        out["verbosity"] = verbosity


def _response_format(text_format: dict[str, Any]) -> dict[str, Any] | None:
    kind = text_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind != "json_schema":
        raise TranslationError(f"Unknown text.format type '{kind}'", "text.format.type")
    json_schema: dict[str, Any] = {
        "name": _string(text_format.get("name"), "text.format.name"),
        "schema": _mapping(text_format.get("schema"), "text.format.schema"),
    }
    description = _optional(text_format, "description", str, "a string", "text.format.description")
    if description is not None:
        json_schema["description"] = description
    strict = _optional(text_format, "strict", bool, "a boolean", "text.format.strict")
    if strict is not None:
        json_schema["strict"] = strict
    return {"type": "json_schema", "json_schema": json_schema}


# --- tools ----------------------------------------------------------------------------------------


def _tools(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    return [_function_tool(tool, f"tools.{i}") for i, tool in enumerate(_list(value, "tools"))]


def _function_tool(value: Any, path: str) -> dict[str, Any]:
    tool = _mapping(value, path)
    kind = tool.get("type")
    if kind != "function":
        if not isinstance(kind, str):
            raise TranslationError("Each tool needs a type", f"{path}.type")
        raise TranslationError(
            f"The '{kind}' tool runs only on OpenAI's Responses API; this model is served over Chat "
            "Completions, which accepts only function tools",
            path,
        )
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise TranslationError("A function tool needs a name (at the top level of the tool)", f"{path}.name")
    function: dict[str, Any] = {"name": name}
    description = _optional(tool, "description", str, "a string", f"{path}.description")
    if description is not None:
        function["description"] = description
    if tool.get("parameters") is not None:
        function["parameters"] = _mapping(tool["parameters"], f"{path}.parameters")
    strict = _optional(tool, "strict", bool, "a boolean", f"{path}.strict")
    if strict is not None:
        function["strict"] = strict
    return {"type": "function", "function": function}


def _tool_choice(value: Any, tools: list[dict[str, Any]]) -> tuple[Any, list[dict[str, Any]]]:
    """Chat's tool_choice, and the tools to send (narrowed for `allowed_tools`)."""
    if value is None:
        return None, tools
    if isinstance(value, str):
        if value not in TOOL_CHOICE_MODES:
            raise TranslationError(f"Unknown tool_choice '{value}'", "tool_choice")
        return value, tools
    choice = _mapping(value, "tool_choice")
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": _string(choice.get("name"), "tool_choice.name")}}, tools
    if kind == "allowed_tools":
        return _allowed_tools(choice, tools)
    raise TranslationError(
        f"tool_choice '{kind}' selects a tool that runs only on OpenAI's Responses API", "tool_choice"
    )


def _allowed_tools(choice: dict[str, Any], tools: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """`allowed_tools` as chat can say it: only the allowed function tools are sent, with its mode."""
    mode = choice.get("mode", "auto")
    if mode not in ("auto", "required"):
        raise TranslationError("allowed_tools mode must be 'auto' or 'required'", "tool_choice.mode")
    allowed: set[str] = set()
    for j, entry in enumerate(_list(choice.get("tools"), "tool_choice.tools")):
        path = f"tool_choice.tools.{j}"
        if _mapping(entry, path).get("type") != "function":
            raise TranslationError("allowed_tools can name only function tools here", path)
        allowed.add(_string(entry.get("name"), f"{path}.name"))
    known = {tool["function"]["name"] for tool in tools}
    if not allowed or allowed - known:
        raise TranslationError("allowed_tools must name function tools listed in tools", "tool_choice.tools")
    return mode, [tool for tool in tools if tool["function"]["name"] in allowed]


# --- input ----------------------------------------------------------------------------------------


def _messages(body: dict[str, Any]) -> list[Message]:
    messages: list[Message] = []
    instructions = _optional(body, "instructions", str, "a string")
    if instructions:
        messages.append({"role": "system", "content": instructions})
    value = body.get("input")
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
        return messages
    items = _list(value, "input")
    if not items:
        raise TranslationError("input must not be empty", "input")
    for i, item in enumerate(items):
        _add_item(messages, item, f"input.{i}")
    return messages


def _add_item(messages: list[Message], value: Any, path: str) -> None:
    item = _mapping(value, path)
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        _add_message(messages, item, path)
    elif kind == "function_call":
        _add_function_call(messages, item, path)
    elif kind == "function_call_output":
        messages.append(_tool_message(item, path))
    elif kind == "reasoning":
        return  # a model's earlier reasoning: chat has no way to carry it back
    elif kind == "item_reference":
        raise TranslationError(
            "item_reference points at an item stored by OpenAI's Responses API" + _STATELESS + ": send the item",
            path,
        )
    elif isinstance(kind, str):
        raise TranslationError(
            f"Input items of type '{kind}' belong to tools that run only on OpenAI's Responses API", path
        )
    else:
        raise TranslationError("Each input item needs a type", f"{path}.type")


def _add_message(messages: list[Message], item: dict[str, Any], path: str) -> None:
    given = item.get("role")
    role = _ROLES.get(given) if isinstance(given, str) else None
    if role is None:
        raise TranslationError(f"Unknown message role '{item.get('role')}'", f"{path}.role")
    content_path = f"{path}.content"
    if role == "assistant":
        content: Any = _assistant_content(item.get("content"), content_path)
        last = messages[-1] if messages else None
        if last is not None and last["role"] == "assistant" and last.get("content") is None:
            last["content"] = content  # text after the function calls of the same turn
            return
    elif role == "system":
        content = _content(item.get("content"), content_path, _text_part)
    else:
        content = _content(item.get("content"), content_path, _user_part)
    messages.append({"role": role, "content": content})


def _add_function_call(messages: list[Message], item: dict[str, Any], path: str) -> None:
    """A call joins the assistant message before it (its text, or the calls made with it)."""
    call = {
        "id": _string(item.get("call_id"), f"{path}.call_id"),
        "type": "function",
        "function": {
            "name": _string(item.get("name"), f"{path}.name"),
            "arguments": _string(item.get("arguments"), f"{path}.arguments", empty=True),
        },
    }
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _tool_message(item: dict[str, Any], path: str) -> Message:
    call_id = _string(item.get("call_id"), f"{path}.call_id")
    output = item.get("output")
    if not isinstance(output, str | list):
        raise TranslationError("function_call_output needs an output string or content list", f"{path}.output")
    content = _content(output, f"{path}.output", _tool_output_part)
    return {"role": "tool", "tool_call_id": call_id, "content": content}


# --- content parts --------------------------------------------------------------------------------


def _content(value: Any, path: str, part: Callable[[Any, str], Part]) -> str | list[Part]:
    """A string stays a string; a list of parts becomes chat's parts, each through `part`."""
    if isinstance(value, str):
        return value
    return [part(entry, f"{path}.{j}") for j, entry in enumerate(_list(value, path))]


def _assistant_content(value: Any, path: str) -> str | list[Part]:
    """Earlier output: text parts joined into one string; a refusal keeps the parts apart."""
    if isinstance(value, str):
        return value
    parts: list[Part] = []
    for j, entry in enumerate(_list(value, path)):
        part_path = f"{path}.{j}"
        kind = _mapping(entry, part_path).get("type")
        if kind in ("output_text", "input_text"):  # input_text: what an easy input message may carry
            parts.append({"type": "text", "text": _string(entry.get("text"), f"{part_path}.text", empty=True)})
        elif kind == "refusal":
            refusal = _string(entry.get("refusal"), f"{part_path}.refusal", empty=True)
            parts.append({"type": "refusal", "refusal": refusal})
        else:
            raise TranslationError(
                f"Assistant messages carry output_text and refusal parts, not '{kind}'", f"{part_path}.type"
            )
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


def _user_part(value: Any, path: str) -> Part:
    if _mapping(value, path).get("type") == "input_image":
        return _image_part(value, path)
    return _text_part(value, path, "user")


def _tool_output_part(value: Any, path: str) -> Part:
    if _mapping(value, path).get("type") == "input_image":
        raise TranslationError("Chat Completions tool results carry only text, not images", path)
    return _text_part(value, path, "function_call_output")


def _text_part(value: Any, path: str, where: str = "system and developer") -> Part:
    part = _mapping(value, path)
    kind = part.get("type")
    if kind == "input_text":
        return {"type": "text", "text": _string(part.get("text"), f"{path}.text", empty=True)}
    if kind == "input_file":
        return _file_text(part, path)
    if kind == "input_image":
        raise TranslationError(f"Chat Completions accepts only text in {where} messages", path)
    raise TranslationError(f"Unknown content part type '{kind}' in {where} content", f"{path}.type")


def _image_part(part: dict[str, Any], path: str) -> Part:
    if part.get("file_id") is not None:
        raise TranslationError(
            "input_image with a file_id refers to a file stored by OpenAI; send image_url (an https or data URL)",
            f"{path}.file_id",
        )
    image: dict[str, Any] = {"url": _string(part.get("image_url"), f"{path}.image_url")}
    if part.get("detail") in IMAGE_DETAILS:
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _file_text(part: dict[str, Any], path: str) -> Part:
    """An input_file given inline as a base64 data URL of a text file becomes a text part."""
    data = part.get("file_data")
    match = _DATA_URL.fullmatch(data) if isinstance(data, str) else None
    if match is None or part.get("file_id") is not None or part.get("file_url") is not None:
        raise TranslationError(
            "input_file is supported here only inline: file_data holding a base64 data URL of a text file",
            path,
        )
    if not TEXT_FILE_TYPES.fullmatch(match["media"].lower()):
        raise TranslationError(
            f"Only text files can be passed inline over Chat Completions, not '{match['media']}'",
            f"{path}.file_data",
        )
    try:
        text = base64.b64decode(match["data"], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise TranslationError("input_file file_data is not base64-encoded UTF-8 text", f"{path}.file_data") from None
    filename = part.get("filename")
    header = f"[file: {filename}]\n" if isinstance(filename, str) and filename else ""
    return {"type": "text", "text": header + text}


# --- shape checks ---------------------------------------------------------------------------------


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TranslationError("Expected an object", path)
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise TranslationError("Expected an array", path)
    return value


def _string(value: Any, path: str, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise TranslationError("Expected a non-empty string" if not empty else "Expected a string", path)
    return value


def _optional(
    source: dict[str, Any], name: str, kind: type | tuple[type, ...], described: str, path: str | None = None
) -> Any:
    """`source[name]` when set and of `kind` (booleans are not numbers), None when absent or null."""
    value = source.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise TranslationError(f"{name} must be {described}", path or name)
    return value
