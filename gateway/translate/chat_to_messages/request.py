"""OpenAI chat request -> Anthropic Messages request: a pure translation, no I/O.

`to_anthropic_request` takes a chat request already validated for types and returns the body
for `POST /v1/messages`. What Anthropic cannot express raises `TranslationError`, whose message
is shown to the client as is (it never repeats user content).

A `response_format` of type `json_schema` becomes a tool the model is forced to call; the
returned body then carries the tool's name under the private key `JSON_TOOL_KEY`
(`"_agentgw_json_tool"`). The caller must pop that key before sending the body and hand its
value to the response translation (`json_tool=`), which turns the tool call back into content.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from gateway.body_limits import MAX_NESTING, too_deeply_nested
from gateway.translate.base import TranslationError

JSON_TOOL_KEY = "_agentgw_json_tool"
DEFAULT_JSON_TOOL = "json_response"
JSON_OBJECT_INSTRUCTION = "Respond only with a single valid JSON object, no prose."

# OpenAI-only request fields with no Anthropic counterpart; they are dropped silently,
# as is any field this module does not know.
DROPPED_OPENAI_FIELDS = frozenset(
    {
        "audio",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "metadata",
        "modalities",
        "prediction",
        "presence_penalty",
        "reasoning_effort",
        "seed",
        "service_tier",
        "store",
        "stream_options",
        "top_logprobs",
        "verbosity",
        "web_search_options",
    }
)

IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})

_DATA_URL = re.compile(r"data:(?P<media>[\w.+-]+/[\w.+-]+);base64,(?P<data>.*)", re.DOTALL)
_TOOL_CHOICE_MODES = {"auto": "auto", "required": "any", "none": "none"}

Block = dict[str, Any]


def to_anthropic_request(body: dict[str, Any], upstream_model: str, default_max_tokens: int) -> dict[str, Any]:
    """Translate an OpenAI chat request into an Anthropic Messages request body.

    `upstream_model` replaces the client's model; `default_max_tokens` applies when the client
    sets neither `max_tokens` nor `max_completion_tokens` (Anthropic requires one).
    Raises `TranslationError` for anything Anthropic cannot express.
    """
    n = body.get("n")
    if n is not None and n != 1:
        raise TranslationError("Anthropic models return one choice; n must be 1", "n")
    for legacy in ("functions", "function_call"):
        if body.get(legacy) is not None:
            raise TranslationError(f"'{legacy}' is deprecated and not supported here; use 'tools'", legacy)

    system, messages = _translate_messages(body.get("messages") or [])
    max_tokens = _first_set(body, "max_completion_tokens", "max_tokens")
    out: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": default_max_tokens if max_tokens is None else max_tokens,
        "messages": messages,
    }

    temperature = body.get("temperature")
    if temperature is not None:
        out["temperature"] = min(max(temperature, 0), 1)  # OpenAI allows 0..2, Anthropic 0..1
    for name in ("top_p", "top_k", "stream"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user") is not None:
        out["metadata"] = {"user_id": body["user"]}

    tools = [_tool(i, tool) for i, tool in enumerate(body.get("tools") or [])]
    tool_choice: dict[str, Any] | None = None
    if tools:  # both APIs reject tool_choice without tools, so drop it rather than fail upstream
        tool_choice = _tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False:
            tool_choice = tool_choice or {"type": "auto"}
            if tool_choice["type"] != "none":
                tool_choice["disable_parallel_tool_use"] = True

    response_format: dict[str, Any] = body.get("response_format") or {}
    format_type = response_format.get("type")
    if format_type == "json_object":
        system = _append_system(system, JSON_OBJECT_INSTRUCTION)
    elif format_type == "json_schema":
        if tools:
            raise TranslationError(
                "response_format json_schema cannot be combined with tools for Anthropic models",
                "response_format",
            )
        json_tool = _json_schema_tool(response_format.get("json_schema") or {})
        tools = [json_tool]
        tool_choice = {"type": "tool", "name": json_tool["name"]}
        out[JSON_TOOL_KEY] = json_tool["name"]
    elif format_type not in (None, "text"):
        raise TranslationError(f"response_format type '{format_type}' is not supported", "response_format")

    if system:
        out["system"] = system
    if tools:
        out["tools"] = tools
    if tool_choice is not None:
        out["tool_choice"] = tool_choice
    return out


def _first_set(body: dict[str, Any], *names: str) -> Any:
    return next((body[name] for name in names if body.get(name) is not None), None)


# --- messages -----------------------------------------------------------------------------------


def _translate_messages(messages: list[dict[str, Any]]) -> tuple[str | list[Block], list[dict[str, Any]]]:
    """Split out the system prompt and turn the rest into alternating Anthropic turns."""
    system_blocks: list[Block] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            system_blocks.extend(_text_blocks(message.get("content"), f"messages[{i}]", role))
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), i)
        elif role == "assistant":
            blocks = _assistant_blocks(message, i)
        elif role == "tool":
            blocks = [_tool_result(message, i)]
            role = "user"
        elif role == "function":
            raise TranslationError(
                "The legacy 'function' role is not supported; use 'tool' messages", f"messages[{i}].role"
            )
        else:
            raise TranslationError(f"Unknown message role '{role}'", f"messages[{i}].role")
        if not blocks:  # Anthropic rejects empty content
            continue
        if turns and turns[-1]["role"] == role:  # Anthropic requires alternating roles
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return _system_value(system_blocks), turns


def _text_blocks(content: Any, where: str, role: str) -> list[Block]:
    """Text-only content (system, developer, tool) as text blocks; blank text is skipped."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    blocks = []
    for j, part in enumerate(content):
        if part.get("type") != "text":
            raise TranslationError(
                f"Anthropic models accept only text content in {role} messages", f"{where}.content[{j}]"
            )
        if part.get("text", "").strip():
            blocks.append(_with_cache_control({"type": "text", "text": part["text"]}, part))
    return blocks


def _user_blocks(content: Any, i: int) -> list[Block]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content.strip() else []
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            if not part.get("text", "").strip():
                continue
            block: Block = {"type": "text", "text": part["text"]}
        elif kind == "image_url":
            block = _image_block(part.get("image_url"), f"messages[{i}].content[{j}]")
        else:
            raise TranslationError(f"Anthropic models do not accept '{kind}' content", f"messages[{i}].content[{j}]")
        blocks.append(_with_cache_control(block, part))
    return blocks


def _image_block(image_url: Any, param: str) -> Block:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise TranslationError("image_url must carry a url", param)
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise TranslationError("image_url must be an http(s) URL or a base64 data URL", param)
    media_type = match["media"].lower()
    if media_type not in IMAGE_MEDIA_TYPES:
        raise TranslationError("Anthropic models accept only JPEG, PNG, GIF and WebP images", param)
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": match["data"]}}


def _assistant_blocks(message: dict[str, Any], i: int) -> list[Block]:
    if message.get("function_call") is not None:
        raise TranslationError(
            "The legacy 'function_call' is not supported; use 'tool_calls'", f"messages[{i}].function_call"
        )
    blocks: list[Block] = []
    content = message.get("content")
    if isinstance(content, str):
        if content.strip():
            blocks.append({"type": "text", "text": content})
    elif content is not None:
        for j, part in enumerate(content):
            kind = part.get("type")
            if kind not in ("text", "refusal"):
                raise TranslationError(
                    f"Assistant messages accept only text content, not '{kind}'",
                    f"messages[{i}].content[{j}]",
                )
            text = part.get(kind) or ""
            if text.strip():
                blocks.append(_with_cache_control({"type": "text", "text": text}, part))
    for j, call in enumerate(message.get("tool_calls") or []):
        blocks.append(_tool_use(call, f"messages[{i}].tool_calls[{j}]"))
    return blocks


def _tool_use(call: dict[str, Any], param: str) -> Block:
    if call.get("type", "function") != "function":
        raise TranslationError("Anthropic models accept only function tool calls", f"{param}.type")
    function = call.get("function") or {}
    arguments = function.get("arguments") or ""
    try:
        tool_input = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        raise TranslationError("Tool call arguments are not valid JSON", f"{param}.function.arguments") from None
    if not isinstance(tool_input, dict):
        raise TranslationError("Tool call arguments must be a JSON object", f"{param}.function.arguments")
    if too_deeply_nested(tool_input):
        raise TranslationError(
            f"Tool call arguments nest more than {MAX_NESTING} levels deep", f"{param}.function.arguments"
        )
    return {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": tool_input}


def _tool_result(message: dict[str, Any], i: int) -> Block:
    content = message.get("content")
    result: Any = content if isinstance(content, str) else _text_blocks(content, f"messages[{i}]", "tool")
    return {"type": "tool_result", "tool_use_id": message.get("tool_call_id"), "content": result}


def _with_cache_control(block: Block, part: dict[str, Any]) -> Block:
    if part.get("cache_control") is not None:
        block["cache_control"] = part["cache_control"]
    return block


# --- system prompt ------------------------------------------------------------------------------


def _system_value(blocks: list[Block]) -> str | list[Block]:
    """A list of text blocks when any carries cache_control (to keep it), else one string."""
    if any("cache_control" in block for block in blocks):
        return blocks
    return "\n\n".join(block["text"] for block in blocks)


def _append_system(system: str | list[Block], text: str) -> str | list[Block]:
    if isinstance(system, list):
        return [*system, {"type": "text", "text": text}]
    return f"{system}\n\n{text}" if system else text


# --- tools --------------------------------------------------------------------------------------


def _tool(i: int, tool: dict[str, Any]) -> Block:
    if tool.get("type") != "function":
        raise TranslationError(
            f"Anthropic models accept only function tools, not '{tool.get('type')}'", f"tools[{i}].type"
        )
    function = tool.get("function") or {}
    out: Block = {"name": function.get("name")}
    if function.get("description") is not None:
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or {"type": "object", "properties": {}}
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICE_MODES:
            raise TranslationError(f"Unknown tool_choice '{choice}'", "tool_choice")
        return {"type": _TOOL_CHOICE_MODES[choice]}
    name = (choice.get("function") or {}).get("name") if choice.get("type") == "function" else None
    if not name:
        raise TranslationError("tool_choice must name a function tool", "tool_choice")
    return {"type": "tool", "name": name}


def _json_schema_tool(json_schema: dict[str, Any]) -> Block:
    tool: Block = {"name": json_schema.get("name") or DEFAULT_JSON_TOOL}
    tool["description"] = json_schema.get("description") or "Give the response as this tool's input."
    tool["input_schema"] = json_schema.get("schema") or {"type": "object", "properties": {}}
    return tool
