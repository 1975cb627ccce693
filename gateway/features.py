"""What the router needs to know about a call, read cheaply from its body and context."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gateway.context import CallContext
from gateway.providers.base import Operation
from routing import RequestFeatures

CHARS_PER_TOKEN = 4  # routing ranks and filters; a cheap estimate is enough (metering counts properly)
TOKENS_PER_IMAGE = 85
TOKENS_PER_MESSAGE = 3


def request_features(
    body: Mapping[str, Any],
    operation: Operation,
    ctx: CallContext,
    requested_model: str,
    allowed_models: frozenset[str] | None,
    headers: Mapping[str, str],
    budget_remaining_usd: float | None = None,
    budget_fraction_remaining: float | None = None,
) -> RequestFeatures:
    chars, images = _prompt_size(body)
    response_format = body.get("response_format")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    return RequestFeatures(
        requested_model=requested_model,
        operation=operation,
        team=ctx.team,
        agent=ctx.agent,
        task=ctx.task,
        session=ctx.session,
        tags=ctx.tags,
        headers=headers,
        est_prompt_tokens=chars // CHARS_PER_TOKEN + images * TOKENS_PER_IMAGE,
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        needs_tools=bool(body.get("tools")),
        needs_json_schema=isinstance(response_format, dict) and response_format.get("type") == "json_schema",
        needs_vision=images > 0,
        stream=body.get("stream") is True,
        allowed_models=allowed_models,
        budget_remaining_usd=budget_remaining_usd,
        budget_fraction_remaining=budget_fraction_remaining,
    )


def _prompt_size(body: Mapping[str, Any]) -> tuple[int, int]:
    """Characters of prompt text and the number of images, from messages or embeddings input."""
    chars = images = 0
    for message in body.get("messages") or ():
        if not isinstance(message, dict):
            continue
        chars += TOKENS_PER_MESSAGE * CHARS_PER_TOKEN
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "image_url":
                    images += 1
                else:
                    chars += len(str(part.get("text") or ""))
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                chars += len(str(function.get("arguments") or ""))
    embed_input = body.get("input")
    if isinstance(embed_input, str):
        chars += len(embed_input)
    elif isinstance(embed_input, list):
        chars += sum(
            len(item) if isinstance(item, str) else CHARS_PER_TOKEN * len(item)
            for item in embed_input
            if isinstance(item, str | list)
        )
    return chars, images


def reserve_prompt_tokens(body: Mapping[str, Any]) -> int:
    """A prompt size that real token counts do not exceed, for budget and token-limit reservations:
    one token per two bytes of UTF-8 (English runs about four characters a token, CJK text about
    one), counting everything sent: messages, tools and a response schema."""
    total = 0
    for value in _texts(body):
        total += len(value) if value.isascii() else len(value.encode())
    return total // 2 + TOKENS_PER_MESSAGE * (len(body.get("messages") or ()) + 1)


def output_allowance(body: Mapping[str, Any]) -> int | None:
    """The most output tokens the request allows over all its choices, or None when it sets no cap."""
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if not isinstance(max_tokens, int):
        return None
    choices = body.get("n")
    return max_tokens * (choices if isinstance(choices, int) and choices > 1 else 1)


def _texts(value: Any) -> Iterator[str]:
    """Every string in a request body except the model name, however deeply nested."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "model":
                yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
