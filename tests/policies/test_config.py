"""Config sections for state, limits, budgets and alerts: strict, exact money, composable into the root."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ConfigDict, ValidationError

from policies.config import BudgetAlertsConfig, BudgetConfig, KeyPolicies, LimitsConfig, StateConfig, TeamPolicies

EXAMPLE = """
state:
  url: redis://127.0.0.1:6379/0
  on_store_error: fail_open
  timeout_ms: 300
budget_alerts:
  url: https://hooks.example.com/budgets
  headers: {Authorization: "Bearer abc"}
  thresholds: [0.8, 0.95]
teams:
  research:
    limits: {rpm: 600, tpm: 1000000, concurrent: 50, per_model: {gpt-4o: {rpm: 100, tpm: 200000}}}
    agent_limits: {rpm: 120}
    budget: {usd: 500, period: month}
    agent_budget: {usd: 50, period: week}
    task_budget: {usd: 2, period: total, alert_thresholds: [0.5]}
keys:
  - {name: crawler, limits: {rpm: 60}, budget: {usd: 20, period: day}}
"""


class Team(TeamPolicies):
    """What gateway/config.py's TeamConfig does: inherit the fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str | None = None


class Key(KeyPolicies):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str


def test_yaml_example_validates() -> None:
    raw = yaml.safe_load(EXAMPLE)
    state = StateConfig.model_validate(raw["state"])
    assert (state.on_store_error, state.timeout_ms, state.connect_timeout_ms) == ("fail_open", 300, 250)
    alerts = BudgetAlertsConfig.model_validate(raw["budget_alerts"])
    assert alerts.secrets() == ["Bearer abc"]
    team = Team.model_validate(raw["teams"]["research"])
    assert team.limits is not None and team.limits.per_model["gpt-4o"].tpm == 200_000
    assert team.task_budget is not None and team.task_budget.cap_nanos == 2 * 10**9
    key = Key.model_validate(raw["keys"][0])
    assert key.budget is not None and key.budget.period == "day"


def test_state_shorthand_and_defaults() -> None:
    assert StateConfig.model_validate("memory").url == "memory"
    config = StateConfig.model_validate("redis://h:6379/1")
    assert (config.on_store_error, config.key_prefix) == ("fail_closed", "agentgw:")


def test_money_is_exact_nanos() -> None:
    assert BudgetConfig.model_validate({"usd": 0.1, "period": "day"}).cap_nanos == 100_000_000
    assert BudgetConfig.model_validate({"usd": "1234.000000001", "period": "day"}).cap_nanos == 1_234_000_000_001


@pytest.mark.parametrize(
    "bad",
    [
        {"usd": -1, "period": "day"},
        {"usd": 1, "period": "year"},
        {"usd": 1},
        {"usd": 1, "period": "day", "alert_thresholds": [1.5]},
        {"usd": 1, "period": "day", "cap": 3},
    ],
)
def test_bad_budgets_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BudgetConfig.model_validate(bad)


def test_limits_are_positive_and_strict() -> None:
    with pytest.raises(ValidationError):
        LimitsConfig.model_validate({"rpm": 0})
    with pytest.raises(ValidationError):
        LimitsConfig.model_validate({"rqm": 10})
    with pytest.raises(ValidationError):
        Key.model_validate({"name": "k", "agent_budget": {"usd": 1, "period": "day"}})  # team-only field
