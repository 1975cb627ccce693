"""Which agent names a key may act as (`X-Agent-Id`), as its config says.

A key pins one agent (`agent: crawler`), lists the names it may use (`agents: [planner, "support-*"]`,
glob patterns allowed: `*`, `?`, `[...]`), or leaves names free (neither). Within its team:

- a name a key pins belongs to the keys that pin it: no other key may act as it;
- a name a key lists, or one of its patterns matches, is kept from free keys the same way; keys
  that list the same name share that agent;
- a key that does not pin may always act as its own name (what its calls without X-Agent-Id are
  attributed to).

A key whose names are open (free, or listed with a pattern) can make up a new name for every call,
which would make per-agent limits and budgets per call. So where its team sets `agent_limits` or
`agent_budget`, such a key is also held to them on all its agents together (scope `key_agents`):
made-up names never buy more than one agent's allowance. A key that lists only literal names gets
each name's allowance: the operator chose how many.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.errors import PermissionDenied

MAX_NAME_CHARS = 128
_WILDCARDS = frozenset("*?[")


class KeyNames(Protocol):
    """What a key's config says about agent names (`gateway.auth.KeyConfig` has these)."""

    @property
    def name(self) -> str: ...
    @property
    def team(self) -> str: ...
    @property
    def agent(self) -> str | None: ...
    @property
    def agents(self) -> list[str] | None: ...


def is_pattern(entry: str) -> bool:
    return not _WILDCARDS.isdisjoint(entry)


def names_are_open(agent: str | None, agents: Sequence[str] | None) -> bool:
    """Whether a key can act as names nobody listed (free, or listed with a pattern)."""
    return agent is None and (agents is None or any(is_pattern(entry) for entry in agents))


def check_name(entry: str) -> str:
    """An agent name or pattern as config may give it: 1 to 128 printable characters."""
    if not 0 < len(entry) <= MAX_NAME_CHARS or not entry.isprintable() or entry != entry.strip():
        raise ValueError(f"an agent name is 1 to {MAX_NAME_CHARS} printable characters, without outer spaces")
    return entry


def _matcher(patterns: Iterable[str]) -> re.Pattern[str] | None:
    patterns = sorted(set(patterns))
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@dataclass(frozen=True, slots=True)
class AgentNames:
    """The agent names one key may act as; `resolve` turns a call's X-Agent-Id into its agent."""

    key: str
    pinned: str | None = None
    listed: frozenset[str] | None = None  # literal names it lists; None: free (or pinned)
    patterns: re.Pattern[str] | None = None  # its own patterns
    taken: frozenset[str] = frozenset()  # names other keys of the team keep from this one
    taken_patterns: re.Pattern[str] | None = None

    @property
    def open(self) -> bool:
        """It can act as names nobody listed: held to per-agent policies on all its agents together."""
        return self.pinned is None and (self.listed is None or self.patterns is not None)

    def is_taken(self, name: str) -> bool:
        """Another key of the team keeps `name` from this one."""
        return name in self.taken or (self.taken_patterns is not None and self.taken_patterns.match(name) is not None)

    def resolve(self, requested: str | None) -> str:
        """The agent a call acts as; 403 when the key may not act as the requested name."""
        if self.pinned is not None:
            if requested is not None and requested != self.pinned:
                raise PermissionDenied("X-Agent-Id does not match the agent this key is bound to.", param="x-agent-id")
            return self.pinned
        if requested is None or requested == self.key:
            return self.key
        if self.is_taken(requested):
            raise PermissionDenied(
                f"The agent '{requested}' belongs to another key of this team; this key may not act as it.",
                param="x-agent-id",
            )
        if self.listed is not None and requested not in self.listed and not self._matches(requested):
            raise PermissionDenied(
                f"This key may not act as agent '{requested}' (its `agents` in the gateway's config).",
                param="x-agent-id",
            )
        return requested

    def _matches(self, name: str) -> bool:
        return self.patterns is not None and self.patterns.match(name) is not None


def agent_names(keys: Sequence[KeyNames]) -> dict[str, AgentNames]:
    """Each key's AgentNames, by key name, from every key's config."""
    pinned: dict[tuple[str, str], set[str]] = {}  # (team, name) -> keys that pin it
    listed: dict[tuple[str, str], set[str]] = {}  # (team, name) -> keys that list it
    patterns: dict[str, list[tuple[str, str]]] = {}  # team -> (pattern, key)
    for key in keys:
        if key.agent is not None:
            pinned.setdefault((key.team, key.agent), set()).add(key.name)
        for entry in key.agents or ():
            if is_pattern(entry):
                patterns.setdefault(key.team, []).append((entry, key.name))
            else:
                listed.setdefault((key.team, entry), set()).add(key.name)
    names: dict[str, AgentNames] = {}
    for key in keys:
        if key.agent is not None:
            names[key.name] = AgentNames(key.name, pinned=key.agent)
            continue
        others_pin = {name for (team, name), owners in pinned.items() if team == key.team and key.name not in owners}
        if key.agents is None:  # free: every name another key of the team pins or lists is taken
            others_list = {
                name for (team, name), owners in listed.items() if team == key.team and key.name not in owners
            }
            others_patterns = [p for p, owner in patterns.get(key.team, ()) if owner != key.name]
            names[key.name] = AgentNames(
                key.name, taken=frozenset(others_pin | others_list), taken_patterns=_matcher(others_patterns)
            )
            continue
        names[key.name] = AgentNames(
            key.name,
            listed=frozenset(e for e in key.agents if not is_pattern(e)),
            patterns=_matcher(e for e in key.agents if is_pattern(e)),
            taken=frozenset(others_pin),
        )
    return names


def name_problems(keys: Sequence[KeyNames]) -> list[str]:
    """Config errors about agent names: one line each, `keys.<i>.<field>: what is wrong`."""
    problems: list[str] = []
    owners: dict[tuple[str, str], str] = {}  # (team, pinned name) -> the first key that pins it
    for key in keys:
        if key.agent is not None:
            owners.setdefault((key.team, key.agent), key.name)
    names = agent_names(keys)
    for i, key in enumerate(keys):
        if key.agent is not None and key.agents is not None:
            problems.append(f"keys.{i}.agents: a key pins one `agent` or lists `agents`, not both")
            continue
        for j, entry in enumerate(key.agents or ()):
            owner = owners.get((key.team, entry))
            if owner is not None and not is_pattern(entry):
                problems.append(
                    f"keys.{i}.agents.{j}: agent '{entry}' is pinned to key '{owner}'; no other key may act as it"
                )
        if key.agent is None and names[key.name].is_taken(key.name):
            problems.append(
                f"keys.{i}.name: calls of this key without X-Agent-Id act as agent '{key.name}', which "
                "another key of the team pins or lists; rename the key or pin its agent"
            )
    return problems
