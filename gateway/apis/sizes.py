"""Cheap size estimates of a request, shared by every API: what routing ranks and filters on, and the
bound budgets and token limits reserve before the provider has counted anything."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gateway.apis.base import Shape

CHARS_PER_TOKEN = 4  # routing ranks and filters; a cheap estimate is enough (metering counts properly)
TOKENS_PER_IMAGE = 85
TOKENS_PER_MESSAGE = 3


def estimated_prompt_tokens(shape: Shape) -> int:
    """The prompt's size for routing: about four characters a token, plus a flat cost per image."""
    return shape.prompt_chars // CHARS_PER_TOKEN + shape.images * TOKENS_PER_IMAGE


def reserve_prompt_tokens(body: Mapping[str, Any], messages: int) -> int:
    """A prompt size that real token counts do not exceed, for budget and token-limit reservations:
    one token per two bytes of UTF-8 (English runs about four characters a token, CJK text about
    one), counting everything sent: messages, tools and a response schema; and one per token of
    embeddings token arrays."""
    return text_bytes(body) // 2 + token_array_length(body.get("input")) + TOKENS_PER_MESSAGE * (messages + 1)


def request_texts(value: Any) -> Iterator[str]:
    """Every string in a request body except the model name, however deeply nested, in order.

    A walk with its own stack: no recursion (which broke near 1,000 levels) and no chain of
    generators as long as the nesting (which made the work grow with depth times size)."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(reversed([child for key, child in item.items() if key != "model"]))
        elif isinstance(item, list) and not set(map(type, item)) <= _NUMBERS:
            stack.extend(reversed(item))


def text_bytes(body: Mapping[str, Any]) -> int:
    """UTF-8 bytes of every string `request_texts` yields, without yielding them: lists of numbers
    (token arrays, embeddings) are skipped and lists of strings summed at C speed."""
    total = 0
    stack: list[Any] = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            total += len(value) if value.isascii() else len(value.encode())
        elif isinstance(value, dict):
            stack.extend(child for key, child in value.items() if key != "model")
        elif isinstance(value, list):
            kinds = set(map(type, value))
            if kinds == {str}:  # a list of strings (embeddings input, stop sequences)
                joined = "".join(value)
                total += len(joined) if joined.isascii() else len(joined.encode())
            elif not kinds <= _NUMBERS:
                stack.extend(value)
    return total


def token_array_length(value: Any) -> int:
    """Tokens in an embeddings `input` given as a token array or a list of them."""
    if not isinstance(value, list) or not value:
        return 0
    if isinstance(value[0], int):
        return len(value)
    return sum(len(item) for item in value if isinstance(item, list))


_NUMBERS = frozenset({int, float, bool, type(None)})
