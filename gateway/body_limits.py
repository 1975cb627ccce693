"""The shape every JSON request body must keep, checked once when it is parsed.

Everything after parsing (validation, routing features, reservations, guardrails, content capture,
re-serialisation for the provider) walks the body, and each JSON array or object costs those walks a
few microseconds; deep nesting broke some of them outright (orjson re-serialises at most 255
levels, a recursive walk stops near 1,000). So, whatever the fields, known or not:

- arrays and objects nest at most `MAX_NESTING` levels (the body itself is the first);
- a body holds at most `MAX_CONTAINERS` arrays and objects in all (plain strings and numbers do not
  count: a message with string content is one object, with a content array three, with a tool call
  four or five), which bounds the work one request puts on the event loop: measured here, 20,000
  one-word messages cost about 70 ms on the loop with content capture on (150 ms with the pii,
  secrets and injection guardrails), 200,000 of them cost 1.5 s before this limit.

JSON that arrives inside a string (tool-call arguments the gateway translates) is held to the
nesting limit too where it is parsed (`too_deeply_nested`). A provider's answer is passed on as its
own bytes; one nested too deep to encode again, when the gateway must, is a 502
(`gateway.apis.base.encode`). The check itself is linear:
level by level, each container visited once, lists of plain values skipped at C speed, no
recursion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

from gateway.errors import InvalidRequest

MAX_NESTING = 64
MAX_CONTAINERS = 20_000
_PLAIN = frozenset({str, int, float, bool, type(None)})


def check_shape(body: dict[str, Any]) -> None:
    """A 400 naming the offending top-level field when `body` nests too deep or holds too much."""
    depth, containers = measure(body, MAX_NESTING, MAX_CONTAINERS)
    if depth > MAX_NESTING:
        field = _worst(body, lambda value: measure(value, MAX_NESTING, _UNLIMITED)[0])
        raise InvalidRequest(too_deep(f"'{field}'"), param=field)
    if containers > MAX_CONTAINERS:
        field = _worst(body, lambda value: measure(value, _UNLIMITED, MAX_CONTAINERS)[1])
        raise InvalidRequest(
            f"The request body holds more than {MAX_CONTAINERS:,} JSON arrays and objects ('{field}' the most); "
            f"this gateway accepts at most {MAX_CONTAINERS:,}.",
            param=field,
        )


def too_deep(what: str) -> str:
    limit = MAX_NESTING
    return f"{what} nests arrays and objects more than {limit} levels deep; this gateway accepts at most {limit}."


def too_deeply_nested(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether `value` (JSON parsed from elsewhere than a request body: tool-call arguments, a
    provider's answer) nests arrays and objects more than `limit` levels deep."""
    return measure(value, limit, _UNLIMITED)[0] > limit


def measure(value: Any, depth_limit: int, count_limit: int) -> tuple[int, int]:
    """How many levels of arrays and objects `value` nests (0 for a plain value) and how many it
    holds, itself included; the walk stops as soon as either passes its limit."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = count = 0
    while level:
        depth += 1
        count += len(level)
        if depth > depth_limit or count > count_limit:
            break
        level = [child for child in chain.from_iterable(map(_children, level)) if type(child) in (dict, list)]
    return depth, count


_UNLIMITED = 1 << 62


def _children(node: dict[str, Any] | list[Any]) -> Iterable[Any]:
    if type(node) is dict:
        return node.values()
    return () if set(map(type, node)) <= _PLAIN else node


def _worst(body: dict[str, Any], score: Callable[[Any], int]) -> str:
    """The top-level field that scores highest, shortened for an error message."""
    field = str(max(body, key=lambda name: score(body[name])))
    return field if len(field) <= 64 else field[:64] + "..."
