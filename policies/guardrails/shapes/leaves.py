"""The texts inside a JSON value (an Anthropic `tool_use.input` object), each with its path.

Walked with an explicit stack, so however deep a client nests its JSON no recursion limit is hit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from policies.guardrails.messages import Path


def json_leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Every string leaf (and integer leaf, as its decimal text: a card number may be written as a
    number) in document order, with its path under `path`. Object keys are not texts here: they name
    the tool's parameters. Writing a new string at an integer leaf's path turns it into a string, as
    redacting JSON text quotes a bare number."""
    stack: list[tuple[Path, Any]] = [(path, value)]
    while stack:
        here, node = stack.pop()
        if isinstance(node, str):
            yield here, node
        elif isinstance(node, int) and not isinstance(node, bool):
            yield here, str(node)
        elif isinstance(node, dict):
            stack.extend(((*here, k), v) for k, v in reversed(node.items()) if isinstance(k, str))
        elif isinstance(node, list):
            stack.extend(((*here, i), v) for i, v in reversed(list(enumerate(node))))
