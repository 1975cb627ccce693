"""The gate's caches stay bounded whatever names callers choose, and so does shutdown's retrying of
the settlements the store has not taken."""

from __future__ import annotations

import asyncio
import time

from gateway import admission
from gateway.admission import Gate, Policies
from gateway.auth import Principal, Role
from gateway.config import Config
from gateway.context import CallContext
from gateway.runtime import open_services
from policies.state import MemoryStore
from policies.state.errors import StoreUnavailable


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


class _NeverLands:
    kind = "budget"

    async def attempt(self) -> None:
        raise StoreUnavailable("the store is down")


def test_shutdown_gives_up_on_settlements_after_state_shutdown_retry_seconds() -> None:
    """Closing the services retries what the store has not taken for `state.shutdown_retry_seconds`
    (10 by default), then counts it as lost."""
    config = Config.model_validate(
        {
            "ledger": False,
            "state": {"shutdown_retry_seconds": 0.3},
            "providers": {"mock": {"type": "mock"}},
            "models": {"mock-chat": {"provider": "mock"}},
            "teams": {"t": {}},
            "keys": [{"name": "k", "key": "admission-test-key-01", "team": "t"}],
        }
    )

    async def main() -> tuple[float, dict[str, int]]:
        async with open_services(config, None, watch=False) as services:
            retries = services.policies.retries
            retries.add(_NeverLands())
            started = time.monotonic()
        return time.monotonic() - started, retries.lost

    elapsed, lost = asyncio.run(main())
    assert lost == {"budget": 1}
    assert elapsed < 5  # not the default's 10 s
