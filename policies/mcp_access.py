"""Which MCP tools, prompts and resources a caller may see and use: allow and deny rules over names.

The gateway names everything an upstream MCP server offers `<server>__<name>`: a tool `create_issue`
of the server `github` is `github__create_issue`, a prompt likewise, a resource
`github__<its uri>`. A rule applies to a caller when every selector it gives matches (`team`, `key`,
and `agent`, a glob); a rule without selectors applies to everyone. Its `allow` and `deny` entries
are fnmatch globs over those names (`github__*`, `*__delete_*`), case-sensitive.

A name is usable when at least one applicable rule allows it and no applicable rule denies it:
nothing is allowed by default, and a deny wins over any allow, wherever the rules stand. The
answer is worked out from the rules of the config in force for every call (a reload changes it at
once, for sessions already open too); only the matching of names is memoised, per config.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_MEMO = 16_384  # names and agents come from callers: the memo stays bounded


class McpAccessRule(BaseModel):
    """One rule: whom it applies to (all selectors given must match; none: everyone), and the globs it
    allows and denies."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: str | None = Field(default=None, description="Applies to the keys of this team.")
    key: str | None = Field(default=None, description="Applies to this key (by name).")
    agent: str | None = Field(default=None, description="Applies to calls acting as agents matching this glob.")
    allow: list[str] = Field(default_factory=list, description="Globs over `<server>__<name>`.")
    deny: list[str] = Field(default_factory=list, description="Globs over `<server>__<name>`; deny wins.")

    @model_validator(mode="after")
    def _says_something(self) -> McpAccessRule:
        if not self.allow and not self.deny:
            raise ValueError("an access rule needs `allow`, `deny` or both")
        return self

    def applies(self, team: str, key: str, agent: str) -> bool:
        return (
            (self.team is None or self.team == team)
            and (self.key is None or self.key == key)
            and (self.agent is None or fnmatchcase(agent, self.agent))
        )


class McpAccess:
    """The access rules of one config, evaluated for a caller and a name."""

    def __init__(self, rules: Sequence[McpAccessRule]) -> None:
        self.rules = tuple(rules)
        self._memo: dict[tuple[str, str, str, str], bool] = {}

    def allows(self, team: str, key: str, agent: str, name: str) -> bool:
        """Whether the caller (its team, key name and the agent it acts as) may see and use `name`."""
        memo_key = (team, key, agent, name)
        decided = self._memo.get(memo_key)
        if decided is None:
            rules = [rule for rule in self.rules if rule.applies(team, key, agent)]
            denied = any(fnmatchcase(name, glob) for rule in rules for glob in rule.deny)
            decided = not denied and any(fnmatchcase(name, glob) for rule in rules for glob in rule.allow)
            if len(self._memo) >= MAX_MEMO:
                self._memo.clear()
            self._memo[memo_key] = decided
        return decided

    def may_reach(self, team: str, key: str, agent: str, server: str) -> bool:
        """Whether some rule that applies could allow anything of `server` (a quick filter before
        asking a server for its lists: its items are then checked one by one)."""
        prefix = f"{server}__"
        for rule in self.rules:
            if rule.applies(team, key, agent) and any(
                glob.startswith(prefix) or not _literal_prefix(glob) or prefix.startswith(_literal_prefix(glob))
                for glob in rule.allow
            ):
                return True
        return False


def _literal_prefix(glob: str) -> str:
    """What a glob's matches all start with: the text before its first wildcard."""
    for i, ch in enumerate(glob):
        if ch in "*?[":
            return glob[:i]
    return glob
