"""Which agent names a key may act as: pinned, listed (patterns too) or free, never another key's."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.agent_names import AgentNames, agent_names
from gateway.auth import KeyConfig
from gateway.config import Config
from gateway.errors import PermissionDenied


def key(name: str, team: str = "research", **fields: Any) -> KeyConfig:
    return KeyConfig.model_validate({"name": name, "key": f"agentgw-test-{name}-key", "team": team, **fields})


KEYS = [
    key("crawler-key", agent="crawler"),
    key("crawler-key-2", agent="crawler"),  # a rotated key pins the same agent
    key("support", agents=["support-*", "triage"]),
    key("fixed", agents=["alpha", "beta"]),
    key("free"),
    key("elsewhere", team="ops"),
]
NAMES = agent_names(KEYS)


def acts_as(key_name: str, requested: str | None) -> str:
    return NAMES[key_name].resolve(requested)


def refused(key_name: str, requested: str) -> str:
    with pytest.raises(PermissionDenied) as info:
        acts_as(key_name, requested)
    assert info.value.param == "x-agent-id"
    return info.value.message


def test_a_pinned_key_is_its_agent() -> None:
    assert acts_as("crawler-key", None) == acts_as("crawler-key", "crawler") == "crawler"
    assert acts_as("crawler-key-2", "crawler") == "crawler"
    refused("crawler-key", "someone-else")


def test_a_free_key_may_act_as_any_name_no_other_key_claims() -> None:
    assert acts_as("free", None) == "free"
    assert acts_as("free", "Weather reporter") == "Weather reporter"
    for claimed in ("crawler", "support-7", "triage", "alpha"):
        assert "belongs to another key" in refused("free", claimed)


def test_a_listing_key_acts_as_its_names_and_patterns_only() -> None:
    assert [acts_as("support", n) for n in ("support-1", "support-eu-2", "triage", None)] == [
        "support-1", "support-eu-2", "triage", "support",
    ]  # fmt: skip
    assert "its `agents`" in refused("support", "billing")
    assert acts_as("fixed", "alpha") == "alpha"
    refused("fixed", "gamma")


def test_a_pattern_never_reaches_a_name_another_key_pins() -> None:
    names = agent_names([key("lead", agent="support-lead"), key("support", agents=["support-*"])])
    assert names["support"].resolve("support-1") == "support-1"
    with pytest.raises(PermissionDenied):
        names["support"].resolve("support-lead")


def test_names_belong_to_a_team() -> None:
    assert acts_as("elsewhere", "crawler") == "crawler"  # ops' crawler is not research's


def test_keys_that_can_make_up_names_are_open() -> None:
    assert [NAMES[k].open for k in ("crawler-key", "support", "fixed", "free")] == [False, True, False, True]
    assert AgentNames("k").open and not AgentNames("k", pinned="a").open


BASE: dict[str, Any] = {
    "providers": {"mock": {"type": "mock"}},
    "models": {"m": {"provider": "mock"}},
    "teams": {"research": {}},
}


def problems(*keys: dict[str, Any]) -> str:
    with pytest.raises(ValueError) as info:
        Config.model_validate(
            {**BASE, "keys": [{"key": f"agentgw-test-key-{i:04}", "team": "research", **k} for i, k in enumerate(keys)]}
        )
    return str(info.value)


def test_config_refuses_claims_on_another_keys_pinned_agent() -> None:
    text = problems({"name": "a", "agent": "crawler"}, {"name": "b", "agents": ["crawler", "x-*"]})
    assert "keys.1.agents.0: agent 'crawler' is pinned to key 'a'" in text
    text = problems({"name": "crawler"}, {"name": "b", "agent": "crawler"})
    assert "keys.0.name: calls of this key without X-Agent-Id act as agent 'crawler'" in text
    assert "not both" in problems({"name": "a", "agent": "x", "agents": ["y"]})
    assert "printable" in problems({"name": "a", "agents": ["tab\there"]})
