"""The gate's caches stay bounded whatever names callers choose."""

from __future__ import annotations

from gateway import admission
from gateway.admission import Gate, Policies
from gateway.auth import Principal, Role
from gateway.config import Config
from gateway.context import CallContext
from policies.state import MemoryStore


def test_rules_cached_per_agent_never_outgrow_their_bound() -> None:
    config = Config.model_validate(
        {
            "providers": {"mock": {"type": "mock"}},
            "models": {"m": {"provider": "mock"}},
            "teams": {"research": {"limits": {"rpm": 100}, "agent_limits": {"rpm": 10}}},
            "keys": [{"name": "k", "key": "agentgw-test-key-0000", "team": "research"}],
        }
    )
    gate = Gate(config, Policies(MemoryStore(), client=None), {})  # type: ignore[arg-type]
    principal = Principal("k", "research", None, Role.AGENT, frozenset())
    for n in range(admission.MAX_CACHED_RULES + 50):
        rules = gate.rules_for(CallContext("req", principal, f"agent-{n}"), "m")
        assert [rule.scope.kind for rule in rules] == ["team", "agent", "key_agents"]
        assert len(gate._rules) <= admission.MAX_CACHED_RULES
