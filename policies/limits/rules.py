"""Which limits apply to a call: `LimitRule`s built from the team's and the key's config."""

from __future__ import annotations

from dataclasses import dataclass, replace

from policies.config import KeyPolicies, LimitsConfig, TeamPolicies
from policies.state.scope import Scope


@dataclass(frozen=True, slots=True)
class LimitRule:
    """Limits on one scope: requests and tokens (input + output) per window, and calls in flight."""

    scope: Scope
    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None


def limit_rules(
    *,
    team: str,
    team_policies: TeamPolicies | None,
    key: str | None = None,
    key_policies: KeyPolicies | None = None,
    agent: str | None = None,
    model: str | None = None,
    pool_agents: bool = False,
) -> tuple[LimitRule, ...]:
    """Every limit a call must pass: the team's, each agent's (`agent_limits`), the key's, and the
    `per_model` entries of each for `model`. A key's limits apply on top of its team's: all are checked.
    With `pool_agents` (the key may make up agent names), `agent_limits` also hold for all the key's
    agents together, so new names never buy more room.

    Pure and cheap, but the result depends only on its arguments: cache it per (key, agent, model).
    """
    rules: list[LimitRule] = []

    def add(scope: Scope, config: LimitsConfig | None) -> None:
        if config is None:
            return
        if config.rpm or config.tpm or config.concurrent:
            rules.append(LimitRule(scope, config.rpm, config.tpm, config.concurrent))
        narrow = config.per_model.get(model) if model is not None else None
        if narrow is not None and (narrow.rpm or narrow.tpm or narrow.concurrent):
            rules.append(LimitRule(replace(scope, model=model), narrow.rpm, narrow.tpm, narrow.concurrent))

    if team_policies is not None:
        add(Scope.of_team(team), team_policies.limits)
        if agent is not None:
            add(Scope(team, "agent", agent), team_policies.agent_limits)
        if pool_agents and key is not None:
            add(Scope(team, "key_agents", key), team_policies.agent_limits)
    if key is not None and key_policies is not None:
        add(Scope(team, "key", key), key_policies.limits)
    return tuple(rules)
