"""MCP access rules: nothing unless allowed, deny wins wherever it stands, selectors narrow a rule."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from policies.mcp_access import McpAccess, McpAccessRule


def access(*rules: dict[str, object]) -> McpAccess:
    return McpAccess([McpAccessRule.model_validate(rule) for rule in rules])


def test_nothing_is_allowed_without_a_rule() -> None:
    assert not access().allows("research", "k", "a", "github__echo")


def test_deny_wins_over_allow_in_any_rule_and_any_order() -> None:
    rules = access(
        {"allow": ["github__*"]},
        {"team": "research", "deny": ["github__delete_*"]},
        {"key": "crawler", "allow": ["github__delete_repo"]},  # a later allow does not re-grant it
    )
    assert rules.allows("research", "crawler", "a", "github__echo")
    assert not rules.allows("research", "crawler", "a", "github__delete_repo")
    assert rules.allows("ops", "crawler", "a", "github__delete_repo")  # the deny is research's only


def test_selectors_team_key_and_agent_glob() -> None:
    rules = access({"team": "research", "agent": "support-*", "allow": ["search__*"]})
    assert rules.allows("research", "k", "support-eu", "search__web")
    assert not rules.allows("research", "k", "planner", "search__web")
    assert not rules.allows("ops", "k", "support-eu", "search__web")
    assert rules.may_reach("research", "k", "support-eu", "search")
    assert not rules.may_reach("research", "k", "support-eu", "github")


def test_a_rule_must_say_something() -> None:
    with pytest.raises(ValidationError):
        McpAccessRule.model_validate({"team": "research"})
