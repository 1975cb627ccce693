"""Budgets strict yet fully usable (issue 15), through the real gateway on memory and on Redis, with one
replica and with two: near a cap the prompt is counted exactly, so a burst gets the calls that fit and
sequential calls fill a budget to the nano-dollar; spend the store forgets is rebuilt from the ledger;
long streams keep their holds; fallbacks count against their own per-model limits; a team admin sees
its agents' and keys' budgets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai
import pytest

from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, GatewayProcess
from tests.integration.test_budgets_and_limits import LONG, USER, budget_config, budgets, burst, ledger_spend
from tests.redis_server import RedisServer
from tests.standin import StandIn

MAX_TOKENS = 10
NANOS_PER_TOKEN = 100_000  # $100 per million tokens, input and output


def call_nanos() -> int:
    """What one call of USER with max_tokens 10 costs, as OpenAI counts its prompt (the stand-in's
    `counted` model does too): its worst case and its real cost are the same."""
    import tiktoken

    encoding = tiktoken.get_encoding("o200k_base")
    prompt = 3 + 3 + len(encoding.encode("user")) + len(encoding.encode(LONG))
    return (prompt + MAX_TOKENS) * NANOS_PER_TOKEN


def exact_config(standin: StandIn, state: Any, **team: Any) -> dict[str, Any]:
    config = budget_config(standin, **team)
    config["models"]["priced"] = {
        "provider": "standin-openai",
        "upstream": "counted",
        "tokenizer": "o200k_base",
        "input_per_mtok": 100,
        "output_per_mtok": 100,
    }
    config["state"] = state
    return config


async def calls(base_url: str, count: int, **headers: str) -> list[int]:
    """`count` chats one after another; the status of each."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key=AGENT_KEY, max_retries=0, timeout=30)
    statuses = []
    try:
        for _ in range(count):
            try:
                await client.chat.completions.create(
                    model="priced", messages=USER, max_tokens=MAX_TOKENS, extra_headers=headers
                )
                statuses.append(200)
            except openai.APIStatusError as error:
                statuses.append(error.status_code)
    finally:
        await client.close()
    return statuses


async def split_burst(urls: list[str], total: int) -> list[int]:
    per = total // len(urls)
    results = await asyncio.gather(*(_burst(url, per) for url in urls))
    return [status for statuses in results for status in statuses]


async def _burst(url: str, count: int) -> list[int]:
    client = openai.AsyncOpenAI(
        base_url=url,
        api_key=AGENT_KEY,
        max_retries=0,
        timeout=30,
        http_client=openai.DefaultAsyncHttpxClient(limits=httpx.Limits(max_connections=count)),
    )

    async def one() -> int:
        try:
            await client.chat.completions.create(model="priced", messages=USER, max_tokens=MAX_TOKENS)
        except openai.APIStatusError as error:
            return error.status_code
        return 200

    try:
        return list(await asyncio.gather(*(one() for _ in range(count))))
    finally:
        await client.close()


@pytest.fixture(params=["memory", "redis", "redis, two replicas"])
def setup(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_burst_of_200_gets_at_least_95_of_the_100_calls_that_fit(
    standin: StandIn, gateway_factory: Any, setup: str, tmp_path: Any
) -> None:
    cap = 100 * call_nanos()
    state: Any = "memory"
    if setup != "memory":
        redis = RedisServer().start()
        state = {"url": redis.url}
    try:
        config = exact_config(standin, state, budget={"usd": cap / 1e9, "period": "day"})
        if setup == "redis, two replicas":
            replicas = [GatewayProcess(config, tmp_path / name).start() for name in ("a", "b")]
            try:
                statuses = asyncio.run(split_burst([r.url + "/v1" for r in replicas], 200))
                with httpx.Client(base_url=replicas[0].url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as http:
                    data = http.get("/v1/budgets", params={"team": "research"}).json()["data"]
            finally:
                for replica in replicas:
                    replica.stop()
            spent = sum(ledger_spend(r.ledger_path)[1] for r in replicas)
        else:
            gateway = gateway_factory(config)
            statuses = asyncio.run(_burst(gateway.base_url, 200))
            data = budgets(gateway, team="research")
            with gateway.http() as http:
                http.get("/v1/usage")  # flush the ledger
            spent = ledger_spend(gateway.ledger_path)[1]
    finally:
        if setup != "memory":
            redis.close()
    assert set(statuses) <= {200, 429}
    assert 95 <= statuses.count(200) <= 100
    [team] = [b for b in data if b["scope"]["kind"] == "team"]
    assert round(team["spent_usd"] * 1e9) == spent <= cap  # never a nano-dollar over the cap
    assert spent == statuses.count(200) * call_nanos()


@pytest.mark.parametrize("state_kind", ["memory", "redis"])
def test_sequential_calls_fill_a_task_budget_exactly(
    standin: StandIn, gateway_factory: Any, redis_server: RedisServer, state_kind: str
) -> None:
    state: Any = (
        "memory" if state_kind == "memory" else {"url": redis_server.url, "key_prefix": f"seq{time.monotonic_ns()}:"}
    )
    gateway = gateway_factory(
        exact_config(standin, state, task_budget={"usd": 3 * call_nanos() / 1e9, "period": "total"})
    )
    assert asyncio.run(calls(gateway.base_url, 4, **{"x-task-id": "T-1"})) == [200, 200, 200, 429]
    [task] = [b for b in budgets(gateway, AGENT_KEY, task="T-1") if b["scope"]["kind"] == "task"]
    assert round(task["spent_usd"] * 1e9) == 3 * call_nanos() and task["remaining_usd"] == 0


def test_a_redis_restart_mid_period_rebuilds_the_spend_from_the_ledger(standin: StandIn, gateway_factory: Any) -> None:
    with RedisServer() as redis:
        config = exact_config(
            standin,
            {"url": redis.url, "fail_fast_ms": 50},
            budget={"usd": 5 * call_nanos() / 1e9, "period": "month"},
            task_budget={"usd": 3 * call_nanos() / 1e9, "period": "total"},
        )
        gateway = gateway_factory(config)
        assert asyncio.run(calls(gateway.base_url, 2, **{"x-task-id": "T-9"})) == [200, 200]
        redis.restart()  # no persistence: every counter is gone
        deadline = time.monotonic() + 10
        while True:  # the first call after the restart may find the pool's connections closed (a 503)
            statuses = asyncio.run(calls(gateway.base_url, 1, **{"x-task-id": "T-9"}))
            if statuses != [503] or time.monotonic() > deadline:
                break
        # The task had spent 2 of its 3 calls before the restart: one more fits, not three.
        assert statuses + asyncio.run(calls(gateway.base_url, 2, **{"x-task-id": "T-9"})) == [200, 429, 429]
        # The month budget (5 calls) remembers the 3 spent: two more fit.
        assert asyncio.run(calls(gateway.base_url, 3, **{"x-task-id": "T-10"})) == [200, 200, 429]
        data = budgets(gateway, team="research")
        with gateway.http() as http:
            http.get("/v1/usage")  # flush the ledger
        [team] = [b for b in data if b["scope"]["kind"] == "team"]
        assert round(team["spent_usd"] * 1e9) == 5 * call_nanos() == ledger_spend(gateway.ledger_path)[1], data


def test_a_restarted_gateway_on_memory_state_remembers_a_total_budget(standin: StandIn, gateway_factory: Any) -> None:
    config = exact_config(standin, "memory", task_budget={"usd": 3 * call_nanos() / 1e9, "period": "total"})
    first = gateway_factory(config)
    assert asyncio.run(calls(first.base_url, 2, **{"x-task-id": "T-1"})) == [200, 200]
    first.stop()  # the ledger is flushed; the memory state dies with the gateway
    config["ledger"] = {"path": str(first.ledger_path)}
    second = gateway_factory(config)
    with second.http(AGENT_KEY) as http:  # the budget shows what the ledger knows before any call
        data = http.get("/v1/budgets", params={"task": "T-1"}).json()["data"]
    [task] = [b for b in data if b["scope"]["kind"] == "task"]
    assert round(task["spent_usd"] * 1e9) == 2 * call_nanos()
    assert asyncio.run(calls(second.base_url, 2, **{"x-task-id": "T-1"})) == [200, 429]


@pytest.mark.parametrize("state_kind", ["memory", "redis"])
def test_a_stream_longer_than_its_hold_keeps_its_slot_and_reservation(
    standin: StandIn, gateway_factory: Any, redis_server: RedisServer, state_kind: str
) -> None:
    config = budget_config(standin, budget={"usd": 1, "period": "day"}, limits={"concurrent": 1})
    config["models"]["streamer"] = {
        "provider": "standin-openai",
        "upstream": "stream-slow",
        "input_per_mtok": 0,
        "output_per_mtok": 1000,
    }
    config["providers"]["standin-openai"]["timeout"] = {"connect": 2, "read": 10}
    state: dict[str, Any] = {"reservation_ttl_seconds": 0.9}
    state["url"] = "memory" if state_kind == "memory" else redis_server.url
    if state_kind == "redis":
        state["key_prefix"] = f"renew{time.monotonic_ns()}:"
    config["state"] = state
    gateway = gateway_factory(config)
    client = gateway.client(AGENT_KEY, timeout=30)

    async def scenario() -> tuple[int, dict[str, Any]]:
        async def stream() -> str:
            aclient = openai.AsyncOpenAI(base_url=gateway.base_url, api_key=AGENT_KEY, max_retries=0, timeout=30)
            try:
                chunks = await aclient.chat.completions.create(
                    model="streamer", messages=USER, stream=True, max_tokens=30
                )
                return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
            finally:
                await aclient.close()

        running = asyncio.ensure_future(stream())
        await asyncio.sleep(2.5)  # the stream runs for about 4 s: its hold would have lapsed by now
        try:
            await asyncio.to_thread(client.chat.completions.create, model="priced", messages=USER, max_tokens=5)
            status = 200
        except openai.APIStatusError as error:
            status = error.status_code
        with gateway.http() as http:
            [team] = [
                b
                for b in http.get("/v1/budgets", params={"team": "research"}).json()["data"]
                if b["scope"]["kind"] == "team"
            ]
        assert await running
        return status, team

    status, team = asyncio.run(scenario())
    assert status == 429  # the one concurrency slot is still the stream's
    assert team["reserved_usd"] > 0  # and so is its reservation


@pytest.mark.usefixtures("within_a_minute")
def test_a_fallback_counts_against_its_own_per_model_limit(standin: StandIn, gateway_factory: Any) -> None:
    config = budget_config(standin, limits={"per_model": {"backup": {"rpm": 1}}})
    config["models"]["backup"] = {"provider": "standin-openai", "upstream": "gpt-x"}
    config["models"]["broken"] = {"provider": "standin-openai", "upstream": "fail-503"}
    config["routes"] = {"pair": {"strategy": "fallback", "candidates": ["broken", "backup"]}}
    gateway = gateway_factory(config)
    client = gateway.client(AGENT_KEY)
    raw = client.chat.completions.with_raw_response.create(model="pair", messages=USER)
    assert raw.headers["x-agentgw-model"] == "backup"  # the fallback answered, counted against its own rpm
    with pytest.raises(openai.APIStatusError) as info:  # the next fallback to it finds its rpm full
        client.chat.completions.create(model="pair", messages=USER)
    assert info.value.status_code == 502
    assert [request.model for request in standin.requests].count("gpt-x") == 1


def test_a_team_admin_sees_its_agents_and_keys_budgets(standin: StandIn, gateway_factory: Any) -> None:
    config = budget_config(standin, budget={"usd": 1, "period": "month"}, agent_budget={"usd": 0.5, "period": "day"})
    config["keys"][1]["budget"] = {"usd": 0.25, "period": "total"}
    config["keys"].append({"name": "lead", "key": "agentgw-test-lead-key", "team": "research", "role": "team_admin"})
    config["keys"].append(
        {"name": "pair", "key": "agentgw-test-pair-key", "team": "research", "agents": ["ann", "bob-*"]}
    )
    gateway = gateway_factory(config)
    asyncio.run(burst(gateway.base_url, AGENT_KEY, 1))
    seen = {(b["scope"]["kind"], b["scope"]["name"]): b for b in budgets(gateway, "agentgw-test-lead-key")}
    assert {
        ("team", "research"),
        ("key", "crawler-key"),
        ("agent", "crawler"),
        ("agent", "ann"),
        ("agent", "limited"),
    } <= set(seen)
    assert seen[("agent", "crawler")]["spent_usd"] == pytest.approx(0.005)
    assert seen[("key", "crawler-key")]["spent_usd"] == pytest.approx(0.005)
