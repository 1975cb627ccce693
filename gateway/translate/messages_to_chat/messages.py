"""Anthropic `system` and `messages` -> Chat Completions messages.

Consecutive turns of one role are merged first (Anthropic does the same), so the tool results
answering one assistant turn are all in the user turn right after it. A user turn becomes its
`tool` messages first (chat wants them right after the assistant message with the `tool_calls`),
then one `user` message with the rest of its content. `thinking` and `redacted_thinking` blocks
are dropped: another provider can neither read nor verify them.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.translate.messages_to_chat.expect import (
    expect_bool,
    expect_list,
    expect_object,
    expect_str,
    expect_type,
    refuse,
)

Block = dict[str, Any]
Located = tuple[str, Block]  # a content block and its dotted path in the request
Turn = tuple[str, list[Located]]

ROLES = ("user", "assistant", "system")
DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
SERVER_TOOL_NOTE = "server tool blocks (Anthropic-run tools) cannot be sent to this model"
IMAGE_NOTE = "[image: in the next user message]"


def system_messages(system: Any) -> list[dict[str, Any]]:
    """The top-level `system` (a string or text blocks) as one system message, none when empty."""
    if system is None:
        return []
    text = system if isinstance(system, str) else "\n\n".join(_texts(system, "system"))
    return [{"role": "system", "content": text}] if text else []


def chat_messages(messages: Any) -> list[dict[str, Any]]:
    """The `messages` array as chat messages."""
    out: list[dict[str, Any]] = []
    for role, blocks in _turns(messages):
        if role == "user":
            out += _user_messages(blocks)
        elif role == "assistant":
            out += _assistant_message(blocks)
        else:
            text = "\n\n".join(_text_of(block, path) for path, block in blocks)
            out += [{"role": "system", "content": text}] if text else []
    return out


def _turns(messages: Any) -> list[Turn]:
    """Each message's role and located blocks, consecutive messages of one role merged."""
    turns: list[Turn] = []
    for i, message in enumerate(expect_list(messages, "messages")):
        path = f"messages.{i}"
        message = expect_object(message, path)
        role = expect_str(message.get("role"), f"{path}.role")
        if role not in ROLES:
            raise refuse(f"{path}.role", f"unknown role '{role}'")
        blocks = _located_blocks(message.get("content"), f"{path}.content")
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    return turns


def _located_blocks(content: Any, path: str) -> list[Located]:
    if isinstance(content, str):
        return [(path, {"type": "text", "text": content})]
    blocks = expect_list(content, path)
    return [(f"{path}.{j}", expect_object(block, f"{path}.{j}")) for j, block in enumerate(blocks)]


# --- user turns ---------------------------------------------------------------------------------


def _user_messages(blocks: list[Located]) -> list[dict[str, Any]]:
    tool_messages: list[dict[str, Any]] = []
    parts: list[Block] = []
    rest: list[Block] = []
    for path, block in blocks:
        kind = expect_type(block, path)
        if kind == "tool_result":
            message, images = _tool_message(block, path)
            tool_messages.append(message)
            parts += images  # chat's tool messages carry text only; the images follow as user content
        elif kind not in DROPPED_BLOCKS:
            rest += _user_parts(kind, block, path)
    parts += rest
    if not parts:
        return tool_messages
    only_text = len(parts) == 1 and parts[0]["type"] == "text"
    return [*tool_messages, {"role": "user", "content": parts[0]["text"] if only_text else parts}]


def _user_parts(kind: str, block: Block, path: str) -> list[Block]:
    if kind == "text":
        return [_text_part(_text_of(block, path))]
    if kind == "image":
        return [_image_part(block, path)]
    if kind == "document":
        return _document_parts(block, path)
    if kind == "search_result":
        return [_text_part(_search_result_text(block, path))]
    if kind == "tool_use":
        raise refuse(path, "tool_use blocks belong in assistant messages")
    raise _unsupported_block(kind, path)


def _tool_message(block: Block, path: str) -> tuple[dict[str, Any], list[Block]]:
    """A `tool_result` block as a chat tool message, and the images it carried."""
    call_id = expect_str(block.get("tool_use_id"), f"{path}.tool_use_id")
    texts: list[str] = []
    images: list[Block] = []
    for part in _result_parts(block.get("content"), f"{path}.content"):
        if part["type"] == "image_url":
            images.append(part)
            texts.append(IMAGE_NOTE)
        else:
            texts.append(part["text"])
    text = "\n\n".join(texts)
    if block.get("is_error") is not None and expect_bool(block["is_error"], f"{path}.is_error"):
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def _result_parts(content: Any, path: str) -> list[Block]:
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_part(content)] if content else []
    parts: list[Block] = []
    for j, block in enumerate(expect_list(content, path)):
        block_path = f"{path}.{j}"
        block = expect_object(block, block_path)
        kind = expect_type(block, block_path)
        if kind not in ("text", "image", "document", "search_result"):
            raise _unsupported_block(kind, block_path)
        parts += _user_parts(kind, block, block_path)
    return parts


# --- content blocks -----------------------------------------------------------------------------


def _text_of(block: Block, path: str) -> str:
    if expect_type(block, path) != "text":
        raise refuse(f"{path}.type", "expected a text block")
    return expect_str(block.get("text"), f"{path}.text")


def _texts(blocks: Any, path: str) -> list[str]:
    """An array of text blocks as its texts."""
    return [_text_of(expect_object(b, f"{path}.{k}"), f"{path}.{k}") for k, b in enumerate(expect_list(blocks, path))]


def _text_part(text: str) -> Block:
    return {"type": "text", "text": text}


def _image_part(block: Block, path: str) -> Block:
    source = expect_object(block.get("source"), f"{path}.source")
    kind = expect_type(source, f"{path}.source")
    if kind == "base64":
        media_type = expect_str(source.get("media_type"), f"{path}.source.media_type")
        data = expect_str(source.get("data"), f"{path}.source.data")
        url = f"data:{media_type};base64,{data}"
    elif kind == "url":
        url = expect_str(source.get("url"), f"{path}.source.url")
    else:
        raise refuse(f"{path}.source", f"image source '{kind}' cannot be sent to this model; use base64 or url")
    return {"type": "image_url", "image_url": {"url": url}}


def _document_parts(block: Block, path: str) -> list[Block]:
    """A plain-text or content document as text (and image) parts; PDFs and files are refused."""
    source = expect_object(block.get("source"), f"{path}.source")
    kind = expect_type(source, f"{path}.source")
    if kind == "text":
        text = expect_str(source.get("data"), f"{path}.source.data")
        parts = [_text_part(text)]
    elif kind == "content":
        parts = _result_parts(source.get("content"), f"{path}.source.content")
    else:
        raise refuse(path, f"documents with a '{kind}' source (PDF or file) cannot be sent to this model; send text")
    title = block.get("title")
    if title is not None and expect_str(title, f"{path}.title"):
        parts.insert(0, _text_part(title))
    return parts


def _search_result_text(block: Block, path: str) -> str:
    title = expect_str(block.get("title"), f"{path}.title")
    source = expect_str(block.get("source"), f"{path}.source")
    return "\n\n".join([f"{title}\nSource: {source}", *_texts(block.get("content"), f"{path}.content")])


def _unsupported_block(kind: str, path: str) -> Exception:
    if kind.startswith(("server_tool_use", "web_", "code_execution", "bash_code", "text_editor_code", "tool_search")):
        return refuse(path, SERVER_TOOL_NOTE)
    return refuse(path, f"'{kind}' blocks cannot be sent to this model")


# --- assistant turns ----------------------------------------------------------------------------


def _assistant_message(blocks: list[Located]) -> list[dict[str, Any]]:
    """One assistant message: the text blocks joined, the tool_use blocks as tool_calls."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for path, block in blocks:
        kind = expect_type(block, path)
        if kind == "text":
            texts.append(_text_of(block, path))
        elif kind == "tool_use":
            calls.append(_tool_call(block, path))
        elif kind not in DROPPED_BLOCKS:
            raise _unsupported_block(kind, path)
    text = "".join(texts)  # text blocks split by citations read as one text
    if not text and not calls:
        return []
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _tool_call(block: Block, path: str) -> dict[str, Any]:
    call_id = expect_str(block.get("id"), f"{path}.id")
    name = expect_str(block.get("name"), f"{path}.name")
    tool_input = expect_object(block.get("input"), f"{path}.input")
    try:
        arguments = orjson.dumps(tool_input).decode()
    except TypeError:  # orjson: an integer beyond 64 bits, or a value JSON has no form for
        raise refuse(f"{path}.input", "cannot be written as JSON") from None
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
