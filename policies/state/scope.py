"""Who a limit or a budget applies to, and how that becomes a state key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ScopeKind = Literal["team", "key", "agent", "task", "key_agents"]  # key_agents: all agents of one key together

# Escapes the characters that structure our keys (`/`, `:`), Redis Cluster hash tags (`{`, `}`) and `%` itself,
# so an id taken from a request header can never collide with, or re-slot, another scope's key.
_QUOTE = str.maketrans({"%": "%25", "/": "%2F", ":": "%3A", "{": "%7B", "}": "%7D"})


def quote(part: str) -> str:
    """One component of a state key, escaped."""
    return part.translate(_QUOTE)


@dataclass(frozen=True, slots=True)
class Scope:
    """A team, or a key, agent or task within a team; `model` narrows it to calls to one model.

    Every scope belongs to a team: agent and task ids are the team's own (two teams may both have an
    agent called `crawler`), and all the state of one call shares the team's Redis Cluster hash slot,
    which is what lets one Lua script update all of it atomically.
    """

    team: str
    kind: ScopeKind
    name: str
    model: str | None = None

    @classmethod
    def of_team(cls, team: str, model: str | None = None) -> Scope:
        return cls(team, "team", team, model)

    @property
    def path(self) -> str:
        """`team/kind/name[/model]`, escaped: the identity used in rate-limit keys."""
        path = f"{quote(self.team)}/{self.kind}/{quote(self.name)}"
        return path if self.model is None else f"{path}/{quote(self.model)}"

    @property
    def state_key(self) -> str:
        """`{team}:kind:name[:model]`: the hash tag keeps a team's keys in one Redis Cluster slot."""
        key = f"{{{quote(self.team)}}}:{self.kind}:{quote(self.name)}"
        return key if self.model is None else f"{key}:{quote(self.model)}"

    def __str__(self) -> str:
        if self.kind == "team":
            text = f"team {self.team}"
        elif self.kind == "key_agents":
            text = f"all agents of key {self.name} together, team {self.team}"
        else:
            text = f"{self.kind} {self.name} of team {self.team}"
        return text if self.model is None else f"{text}, model {self.model}"

    def as_dict(self) -> dict[str, str | None]:
        """Plain JSON shape, for the budgets endpoint and alert payloads."""
        return {"team": self.team, "kind": self.kind, "name": self.name, "model": self.model}
