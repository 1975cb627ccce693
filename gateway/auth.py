"""Gateway keys: declared in config, held only as SHA-256 digests, checked in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from gateway.agent_names import AgentNames, agent_names, check_name, names_are_open
from gateway.errors import AuthenticationFailed, PermissionDenied
from policies.config import KeyPolicies

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MIN_KEY_LENGTH = 12


class Role(StrEnum):
    AGENT = "agent"
    TEAM_ADMIN = "team_admin"
    ADMIN = "admin"


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyConfig(KeyPolicies):
    """One gateway key. Give `key` (usually `${ENV_VAR}`) or its `key_sha256`; only the digest is kept.
    Its limits and budgets (`policies.config.KeyPolicies`) apply on top of its team's."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$")
    key_sha256: str = Field(description="Hex SHA-256 of the key; filled in from `key` at load.")
    team: str
    agent: str | None = Field(default=None, description="Pins the agent; X-Agent-Id may not differ.")
    agents: list[str] | None = Field(
        default=None,
        description="Agent names (or glob patterns: 'support-*') X-Agent-Id may give; unset: any name no "
        "other key of the team pins or lists. See gateway.agent_names.",
    )
    role: Role = Role.AGENT
    models: list[str] = Field(default_factory=lambda: ["*"], description="Models and routes, or '*'.")
    guardrails: list[str] = Field(default_factory=list, description="Added to the team's guardrails.")

    @field_validator("agent")
    @classmethod
    def _check_agent(cls, agent: str | None) -> str | None:
        return None if agent is None else check_name(agent)

    @field_validator("agents")
    @classmethod
    def _check_agents(cls, agents: list[str] | None) -> list[str] | None:
        return None if agents is None else [check_name(entry) for entry in agents]

    @property
    def open_agent_names(self) -> bool:
        """It may act as names nobody listed: held to per-agent policies on all its agents together."""
        return names_are_open(self.agent, self.agents)

    @model_validator(mode="before")
    @classmethod
    def _hash_plain_key(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        plain = data.pop("key", None)
        if plain is not None and "key_sha256" in data:
            raise ValueError("give either `key` or `key_sha256`, not both")
        if plain is not None:
            if not isinstance(plain, str) or len(plain) < MIN_KEY_LENGTH:
                raise ValueError(f"`key` must be a string of at least {MIN_KEY_LENGTH} characters")
            data["key_sha256"] = digest(plain).hex()
        elif "key_sha256" not in data:
            raise ValueError("a key needs `key` or `key_sha256`")
        elif not _HEX64.match(str(data["key_sha256"]).lower()):
            raise ValueError("`key_sha256` must be 64 hex digits")
        else:
            data["key_sha256"] = str(data["key_sha256"]).lower()
        return data


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as established by their key."""

    key_name: str
    team: str
    agent: str | None
    role: Role
    models: frozenset[str]
    guardrails: tuple[str, ...] = ()  # the key's own; the team's are added by the runtime
    names: AgentNames | None = None  # the agent names it may act as; None: its pinned agent, or any

    def act_as(self, requested: str | None) -> str:
        """The agent a call acts as, from its X-Agent-Id (None when absent); 403 when not allowed."""
        names = self.names or AgentNames(self.key_name, pinned=self.agent)
        return names.resolve(requested)

    @property
    def open_agent_names(self) -> bool:
        """It may act as names nobody listed (see `gateway.agent_names`)."""
        return self.names.open if self.names is not None else self.agent is None

    def may_use(self, name: str) -> bool:
        return "*" in self.models or name in self.models

    def check_model(self, name: str) -> None:
        if not self.may_use(name):
            raise PermissionDenied(f"This key may not use model '{name}'.", param="model")


class KeyStore:
    """Looks a presented key up by its digest, then confirms it with a constant-time compare."""

    def __init__(self, keys: Iterable[KeyConfig]) -> None:
        self._by_digest: dict[bytes, tuple[bytes, Principal]] = {}
        self._by_name: dict[str, tuple[bytes, Principal]] = {}
        keys = list(keys)
        names = agent_names(keys)
        for key in keys:
            raw = bytes.fromhex(key.key_sha256)
            principal = Principal(
                key.name, key.team, key.agent, key.role, frozenset(key.models), tuple(key.guardrails), names[key.name]
            )
            self._by_digest[raw] = self._by_name[key.name] = (raw, principal)

    def authenticate(self, authorization: str | None, *, api_key: str | None = None) -> Principal:
        """The principal for an `Authorization: Bearer <key>` header value, or for an `x-api-key`
        header (how the anthropic SDK sends keys); a 401 otherwise."""
        if not authorization:
            if api_key and api_key.strip():
                return self._lookup(api_key.strip())
            raise AuthenticationFailed(
                "Missing gateway key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.", param=None
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationFailed("The Authorization header must be 'Bearer <key>'.")
        return self._lookup(token)

    def named(self, name: str) -> tuple[bytes, Principal] | None:
        """A key's digest and principal by the key's name (a console session names its key)."""
        return self._by_name.get(name)

    def _lookup(self, token: str) -> Principal:
        presented = digest(token)
        found = self._by_digest.get(presented)
        if found is None or not hmac.compare_digest(found[0], presented):
            raise AuthenticationFailed("Incorrect gateway key provided.")
        return found[1]

    def __len__(self) -> int:
        return len(self._by_digest)
