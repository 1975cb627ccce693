"""Where a pydantic validation error points in the user's own document (config file or body)."""

from __future__ import annotations

from typing import Any


def data_path(loc: tuple[int | str, ...], data: Any, *, missing: bool = False) -> tuple[int | str, ...]:
    """The part of `loc` that exists in `data`: the union branch labels and tags pydantic adds
    (`'str'`, `'list[...]'`, a provider's `type`) are dropped. A `missing` field is absent from
    the data by definition, so its name is kept as the last part."""
    path: list[int | str] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            continue
        path.append(part)
    if missing and loc:
        path.append(loc[-1])
    return tuple(path)
