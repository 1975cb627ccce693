"""Type checks on the client's Messages request that fail as `TranslationError` naming the dotted path.

The path is in the message too (`messages.0.content.1: expected an object`), as Anthropic's own
errors write it, since Anthropic's error object has no `param` field to carry it.
"""

from __future__ import annotations

from typing import Any

from gateway.translate.base import TranslationError


def refuse(path: str, reason: str) -> TranslationError:
    """The error for a request that is well formed but cannot be carried over Chat Completions."""
    return TranslationError(f"{path}: {reason}", path)


def expect_object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise refuse(path, "expected an object")
    return value


def expect_list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise refuse(path, "expected an array")
    return value


def expect_str(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise refuse(path, "expected a string")
    return value


def expect_int(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise refuse(path, "expected an integer")
    return value


def expect_number(value: Any, path: str) -> float | int:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise refuse(path, "expected a number")
    return value


def expect_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise refuse(path, "expected a boolean")
    return value


def expect_type(block: dict[str, Any], path: str) -> str:
    """A content block's or tool's `type`, which must be a string."""
    return expect_str(block.get("type"), f"{path}.type")
