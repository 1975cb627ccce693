"""Which budgets apply to a call, from the team's and the key's config."""

from __future__ import annotations

from collections.abc import Sequence

from policies.budgets.model import Budget
from policies.config import BudgetConfig, KeyPolicies, TeamPolicies
from policies.state.scope import Scope


def call_budgets(
    *,
    team: str,
    team_policies: TeamPolicies | None,
    key: str | None = None,
    key_policies: KeyPolicies | None = None,
    agent: str | None = None,
    task: str | None = None,
    default_thresholds: Sequence[float] = (),
    pool_agents: bool = False,
) -> tuple[Budget, ...]:
    """Every budget a call is reserved against: the team's, the agent's (`agent_budget`, per agent), the
    key's, and the task's (`task_budget` of the team and of the key, per X-Task-Id). With `pool_agents`
    (the key may make up agent names), `agent_budget` also caps all the key's agents together.

    `default_thresholds` (from `budget_alerts.thresholds`) apply where a budget names none of its own.
    """
    budgets: list[Budget] = []
    defaults = tuple(default_thresholds)

    def add(scope: Scope, config: BudgetConfig | None) -> None:
        if config is not None:
            thresholds = defaults if config.alert_thresholds is None else tuple(config.alert_thresholds)
            budgets.append(Budget(scope, config.cap_nanos, config.period, thresholds))

    if team_policies is not None:
        add(Scope.of_team(team), team_policies.budget)
        if agent is not None:
            add(Scope(team, "agent", agent), team_policies.agent_budget)
        if pool_agents and key is not None:
            add(Scope(team, "key_agents", key), team_policies.agent_budget)
        if task is not None:
            add(Scope(team, "task", task), team_policies.task_budget)
    if key is not None and key_policies is not None:
        add(Scope(team, "key", key), key_policies.budget)
        if task is not None:
            add(Scope(team, "task", task), key_policies.task_budget)
    return tuple(budgets)
