"""Tool access: which tool names may be declared in a request and called in a response.

Names are matched with fnmatch globs, case-sensitively (`search_*`, `github.*`). A name is allowed
when it matches no `deny` glob and, if an `allow` list is set, at least one `allow` glob.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase


class ToolPolicy:
    """An allow list (None: everything) and a deny list of globs."""

    def __init__(self, allow: Sequence[str] | None, deny: Sequence[str]) -> None:
        self.allow = tuple(allow) if allow is not None else None
        self.deny = tuple(deny)
        self._decided: dict[str, bool] = {}

    def allowed(self, name: str) -> bool:
        decided = self._decided.get(name)
        if decided is None:
            decided = not any(fnmatchcase(name, g) for g in self.deny) and (
                self.allow is None or any(fnmatchcase(name, g) for g in self.allow)
            )
            if len(self._decided) < 4096:  # names come from clients: keep the memo bounded
                self._decided[name] = decided
        return decided

    def disallowed(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if not self.allowed(n)]
