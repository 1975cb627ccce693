"""Shared pieces of counting a prompt exactly in an API's own shape (`Api.prompt_tokens`): each API
walks its body and asks a provider's `Tokenizer` for every text; what cannot be counted exactly
(images, audio, files, an item the API does not know) ends the count with `Uncountable`, and the
cheap bound stands for that call."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.metering.tokenizers import Tokenizer


class Uncountable(Exception):
    """The prompt holds something whose tokens cannot be counted exactly here."""


def json_tokens(value: Any, tok: Tokenizer) -> int:
    """Tokens of a value written as compact JSON: a bound for what a provider renders from it (tool
    definitions, schemas, tool-call arguments) in a format of its own."""
    return tok.text(orjson.dumps(value).decode()) if value is not None else 0


def tools_tokens(tools: Any, tok: Tokenizer) -> int:
    """Tool definitions: their JSON, `per_tool` each and `tools_base` once."""
    if not tools:
        return 0
    if not isinstance(tools, list):
        raise Uncountable("tools")
    return tok.tools_base + sum(tok.per_tool + json_tokens(tool, tok) for tool in tools)


def text_of(value: Any, tok: Tokenizer) -> int:
    """A plain string field (a role, a name, an id): its tokens; anything else counts as its JSON."""
    if value is None:
        return 0
    return tok.text(value) if isinstance(value, str) else json_tokens(value, tok)
