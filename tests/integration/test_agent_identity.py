"""Who a key may act as, through the real gateway: another key's pinned agent is never claimable, and
making up agent names never escapes per-agent limits or budgets (issue 12)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import pytest

from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, LIMITED_KEY
from tests.integration.test_budgets_and_limits import CALL_COST, MAX_TOKENS, USER, budget_config, budgets
from tests.redis_server import RedisServer
from tests.standin import StandIn

SUPPORT_KEY = "agentgw-test-support-key"
FIXED_KEY = "agentgw-test-fixed-key"


def identity_config(standin: StandIn, state: Any = "memory", **team: Any) -> dict[str, Any]:
    """research: `crawler-key` pins `crawler`; `limited` is free; `support` lists a pattern; `fixed`
    lists two names."""
    config = budget_config(standin, **team)
    config["state"] = state
    config["keys"][2]["models"] = ["priced"]
    config["keys"] += [
        {"name": "support", "key": SUPPORT_KEY, "team": "research", "agents": ["support-*"]},
        {"name": "fixed", "key": FIXED_KEY, "team": "research", "agents": ["alpha", "beta"]},
    ]
    return config


async def calls_as(base_url: str, key: str, agents: list[str]) -> list[int]:
    """One call per agent name, one after the other; the HTTP status of each."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)
    statuses = []
    try:
        for agent in agents:
            try:
                await client.chat.completions.create(
                    model="priced", messages=USER, max_tokens=MAX_TOKENS, extra_headers={"x-agent-id": agent}
                )
                statuses.append(200)
            except openai.APIStatusError as error:
                statuses.append(error.status_code)
    finally:
        await client.close()
    return statuses


@pytest.fixture(params=["memory", "redis"])
def state(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return "memory"
    server: RedisServer = request.getfixturevalue("redis_server")
    return {"url": server.url, "key_prefix": f"identity{time.monotonic_ns()}:"}


@pytest.mark.usefixtures("within_a_minute")
def test_another_keys_pinned_agent_is_never_claimable(standin: StandIn, gateway_factory: Any) -> None:
    config = identity_config(standin, agent_budget={"usd": 2 * CALL_COST, "period": "day"}, agent_limits={"rpm": 2})
    gateway = gateway_factory(config)
    for key in (LIMITED_KEY, SUPPORT_KEY, FIXED_KEY):
        with pytest.raises(openai.PermissionDeniedError) as info:
            gateway.client(key).chat.completions.create(
                model="priced", messages=USER, max_tokens=MAX_TOKENS, extra_headers={"x-agent-id": "crawler"}
            )
        assert info.value.body["param"] == "x-agent-id"
        with gateway.http(key) as http:  # nor read its budget
            assert http.get("/v1/budgets", headers={"x-agent-id": "crawler"}).status_code == 403
            assert http.get("/v1/budgets", params={"agent": "crawler"}).status_code == 403
    assert standin.requests == []
    assert asyncio.run(calls_as(gateway.base_url, AGENT_KEY, ["crawler", "crawler"])) == [200, 200]  # all its own
    [crawler] = [b for b in budgets(gateway, AGENT_KEY) if b["scope"]["kind"] == "agent"]
    assert crawler["scope"]["name"] == "crawler" and crawler["spent_usd"] == pytest.approx(2 * CALL_COST)


@pytest.mark.usefixtures("within_a_minute")
def test_new_names_never_escape_per_agent_limits(standin: StandIn, gateway_factory: Any, state: Any) -> None:
    gateway = gateway_factory(identity_config(standin, state, agent_limits={"rpm": 2}))
    names = [f"agent-{i}" for i in range(10)]
    assert asyncio.run(calls_as(gateway.base_url, LIMITED_KEY, names)) == [200, 200] + [429] * 8
    with pytest.raises(openai.RateLimitError) as info:
        gateway.client(LIMITED_KEY).chat.completions.create(model="priced", messages=USER, max_tokens=MAX_TOKENS)
    assert "all agents of key 'limited' together" in info.value.body["message"]
    support = [f"support-{i}" for i in range(5)]  # a pattern opens names as much as no list does
    assert asyncio.run(calls_as(gateway.base_url, SUPPORT_KEY, support)) == [200, 200, 429, 429, 429]
    # Literal names are the operator's choice: each has its own allowance, and no more names.
    fixed = asyncio.run(calls_as(gateway.base_url, FIXED_KEY, ["alpha", "alpha", "alpha", "beta", "beta", "gamma"]))
    assert fixed == [200, 200, 429, 200, 200, 403]


def test_new_names_never_escape_per_agent_budgets(standin: StandIn, gateway_factory: Any, state: Any) -> None:
    gateway = gateway_factory(identity_config(standin, state, agent_budget={"usd": 2 * CALL_COST, "period": "day"}))
    assert asyncio.run(calls_as(gateway.base_url, LIMITED_KEY, [f"a{i}" for i in range(6)])) == [200, 200] + [429] * 4
    mine = {(b["scope"]["kind"], b["scope"]["name"]): b for b in budgets(gateway, LIMITED_KEY)}
    pooled = mine[("key_agents", "limited")]  # the key's agents together, shown to the key
    assert pooled["spent_usd"] == pytest.approx(2 * CALL_COST) and pooled["remaining_usd"] == 0
    everyone = {(b["scope"]["kind"], b["scope"]["name"]) for b in budgets(gateway, ADMIN_KEY, team="research")}
    assert {("key_agents", "limited"), ("key_agents", "support")} <= everyone
    assert ("key_agents", "fixed") not in everyone and ("key_agents", "crawler-key") not in everyone
