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
    one), counting everything sent: messages, tools and a response schema."""
    total = 0
    for value in request_texts(body):
        total += len(value) if value.isascii() else len(value.encode())
    return total // 2 + TOKENS_PER_MESSAGE * (messages + 1)


def request_texts(value: Any) -> Iterator[str]:
    """Every string in a request body except the model name, however deeply nested."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "model":
                yield from request_texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from request_texts(item)
