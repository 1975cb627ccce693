"""Budgets and rate limits through the real gateway: caps that hold under concurrency, on one replica
and on two sharing a real Redis, the store going away and coming back, alerts, task budgets."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from typing import Any

import httpx
import openai
import pytest

from tests.gateway_harness import ADMIN_KEY, AGENT_KEY, GatewayProcess, base_config
from tests.redis_server import RedisServer
from tests.standin import StandIn
from tests.webhook_receiver import WebhookReceiver

PRICE_PER_MTOK = 1000  # $0.001 per output token: 5 tokens cost exactly $0.005
MAX_TOKENS = 5
CALL_COST = 0.005
LONG = "please answer with many many words so that the reply is always cut at max tokens"
USER = [{"role": "user", "content": LONG}]


def budget_config(standin: StandIn, **team: Any) -> dict[str, Any]:
    """A team whose calls to `priced` each cost exactly CALL_COST (worst case and real)."""
    config = base_config(standin)
    config["models"]["priced"] = {
        "provider": "standin-openai",
        "upstream": "gpt-x",
        "input_per_mtok": 0,
        "output_per_mtok": PRICE_PER_MTOK,
    }
    config["teams"]["research"] = team
    return config


async def burst(base_url: str, key: str, calls: int, model: str = "priced", **headers: str) -> list[int]:
    """`calls` simultaneous chats with `model` through the openai SDK; the HTTP status of each."""
    client = openai.AsyncOpenAI(
        base_url=base_url,
        api_key=key,
        max_retries=0,
        timeout=30,
        http_client=openai.DefaultAsyncHttpxClient(limits=httpx.Limits(max_connections=calls)),
    )

    async def one() -> int:
        try:
            await client.chat.completions.create(
                model=model, messages=USER, max_tokens=MAX_TOKENS, extra_headers=headers
            )
        except openai.APIStatusError as error:
            return error.status_code
        return 200

    try:
        return list(await asyncio.gather(*(one() for _ in range(calls))))
    finally:
        await client.close()


def ledger_spend(path: Any) -> tuple[int, int]:
    with sqlite3.connect(path) as db:
        count, nanos = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(cost_nanos), 0) FROM usage_events WHERE outcome = 'ok'"
        ).fetchone()
    return int(count), int(nanos)


def budgets(gateway: Any, key: str = ADMIN_KEY, **params: str) -> list[dict[str, Any]]:
    with gateway.http(key) as http:
        response = http.get("/v1/budgets", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


@pytest.fixture(params=["memory", "redis"])
def state(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return "memory"
    server: RedisServer = request.getfixturevalue("redis_server")
    return {"url": server.url, "key_prefix": f"cap{time.monotonic_ns()}:"}


def test_a_cap_that_admits_100_of_200_simultaneous_calls_never_overspends(
    standin: StandIn, gateway_factory: Any, state: Any
) -> None:
    config = budget_config(standin, budget={"usd": round(100 * CALL_COST, 6), "period": "day"})
    config["state"] = state
    gateway = gateway_factory(config)
    statuses = asyncio.run(burst(gateway.base_url, AGENT_KEY, 200))
    assert statuses.count(200) == 100
    assert set(statuses) == {200, 429}
    with gateway.http() as http:
        http.get("/v1/usage")  # flush the ledger
    admitted, nanos = ledger_spend(gateway.ledger_path)
    assert admitted == 100 and nanos <= 100 * CALL_COST * 1e9
    [team] = [b for b in budgets(gateway) if b["scope"]["kind"] == "team" and b["scope"]["team"] == "research"]
    assert team["spent_usd"] == pytest.approx(100 * CALL_COST) and team["remaining_usd"] == pytest.approx(0)
    assert team["reserved_usd"] == 0 and team["resets_at"] is not None


def test_budget_refusal_is_final_for_the_sdk(standin: StandIn, gateway_factory: Any) -> None:
    gateway = gateway_factory(budget_config(standin, budget={"usd": 0.001, "period": "month"}))
    client = gateway.client(AGENT_KEY, max_retries=3)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="priced", messages=USER, max_tokens=MAX_TOKENS)
    assert info.value.body["code"] == "budget_exceeded"
    headers = info.value.response.headers
    assert headers["x-should-retry"] == "false" and 1 <= int(headers["retry-after"]) <= 31 * 86_400
    assert standin.requests == []
    refusals = httpx.get(gateway.url + "/metrics").text
    # The SDK asked once: x-should-retry: false stops its retries.
    assert 'agentgw_requests_total{operation="chat",status="429",code="budget_exceeded"} 1.0' in refusals


def test_a_spent_total_budget_never_says_retry(standin: StandIn, gateway_factory: Any) -> None:
    gateway = gateway_factory(budget_config(standin, task_budget={"usd": 0.001, "period": "total"}))
    client = gateway.client(AGENT_KEY, max_retries=3)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(
            model="priced", messages=USER, max_tokens=MAX_TOKENS, extra_headers={"x-task-id": "t-1"}
        )
    headers = info.value.response.headers
    assert headers["x-should-retry"] == "false" and "retry-after" not in headers  # a total budget never resets
    # A sub-cent cap prints with the digits it needs.
    assert info.value.body["message"] == (
        "The total budget of $0.001 for task t-1 of team research is exhausted (spent $0.00, held for calls "
        "in flight $0.00, this call may cost up to $0.005)."
    )
    text = httpx.get(gateway.url + "/metrics").text  # the SDK asked once
    assert 'agentgw_requests_total{operation="chat",status="429",code="budget_exceeded"} 1.0' in text


@pytest.mark.usefixtures("within_a_minute")
def test_a_call_a_budget_refuses_uses_up_no_rate_limit(standin: StandIn, gateway_factory: Any, state: Any) -> None:
    config = budget_config(standin, limits={"rpm": 2}, task_budget={"usd": 0.001, "period": "total"})
    config["keys"][1]["limits"] = {"rpm": 2, "concurrent": 1}
    config["state"] = state
    gateway = gateway_factory(config)
    refused = asyncio.run(burst(gateway.base_url, AGENT_KEY, 5, **{"x-task-id": "too-dear"}))
    assert refused == [429] * 5  # each refused by the task budget
    client = gateway.client(AGENT_KEY)
    raw = client.chat.completions.with_raw_response.create(model="priced", messages=USER, max_tokens=MAX_TOKENS)
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"  # the refused calls counted nothing
    client.chat.completions.create(model="priced", messages=USER, max_tokens=MAX_TOKENS)


def test_task_budgets_cap_each_task_separately(standin: StandIn, gateway_factory: Any) -> None:
    gateway = gateway_factory(budget_config(standin, task_budget={"usd": 2 * CALL_COST, "period": "total"}))
    statuses = asyncio.run(burst(gateway.base_url, AGENT_KEY, 4, **{"x-task-id": "T-1"}))
    assert sorted(statuses) == [200, 200, 429, 429]
    assert asyncio.run(burst(gateway.base_url, AGENT_KEY, 1, **{"x-task-id": "T-2"})) == [200]
    [task] = budgets(gateway, AGENT_KEY, task="T-1")[-1:]
    assert task["scope"] == {"team": "research", "kind": "task", "name": "T-1", "model": None}
    assert task["period"] == "total" and task["spent_usd"] == pytest.approx(2 * CALL_COST)
    with gateway.http(AGENT_KEY) as http:  # an agent's own X-Task-Id header asks for its task's budget
        data = http.get("/v1/budgets", headers={"x-task-id": "T-2"}).json()["data"]
    [task] = [b for b in data if b["scope"]["kind"] == "task"]
    assert task["scope"]["name"] == "T-2" and task["spent_usd"] == pytest.approx(CALL_COST)


@pytest.mark.usefixtures("within_a_minute")
def test_rate_limits_and_their_headers(standin: StandIn, gateway_factory: Any) -> None:
    config = budget_config(standin, limits={"rpm": 3, "tpm": 100000})
    gateway = gateway_factory(config)
    client = gateway.client(AGENT_KEY)
    raw = client.chat.completions.with_raw_response.create(model="priced", messages=USER, max_tokens=MAX_TOKENS)
    assert raw.headers["x-ratelimit-limit-requests"] == "3"
    assert raw.headers["x-ratelimit-remaining-requests"] == "2"
    assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
    assert "x-ratelimit-reset-requests" in raw.headers
    for _ in range(2):
        client.chat.completions.create(model="priced", messages=USER, max_tokens=MAX_TOKENS)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="priced", messages=USER, max_tokens=MAX_TOKENS)
    assert info.value.body["code"] == "rate_limit_exceeded"
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 60
    assert info.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(standin.requests) == 3


@pytest.mark.usefixtures("within_a_minute")
def test_a_keys_limits_apply_on_top_of_its_teams(standin: StandIn, gateway_factory: Any) -> None:
    config = budget_config(standin, limits={"rpm": 100})
    config["keys"][1]["limits"] = {"rpm": 1}
    gateway = gateway_factory(config)
    assert asyncio.run(burst(gateway.base_url, AGENT_KEY, 3)).count(200) == 1


def test_soft_threshold_webhook_fires_once(standin: StandIn, gateway_factory: Any) -> None:
    with WebhookReceiver() as receiver:
        config = budget_config(standin, budget={"usd": 10 * CALL_COST, "period": "week", "alert_thresholds": [0.5]})
        config["budget_alerts"] = {"url": receiver.url}
        gateway = gateway_factory(config)
        for _ in range(8):
            asyncio.run(burst(gateway.base_url, AGENT_KEY, 1))
        receiver.wait_for(bool, timeout=5)
        time.sleep(0.3)  # a second alert, were one sent, would be in by now
    [alert] = receiver.posts
    assert alert["threshold"] == 0.5 and alert["scope"]["team"] == "research"
    assert alert["cap_usd"] == pytest.approx(10 * CALL_COST) and alert["spent_usd"] >= 5 * CALL_COST


@pytest.mark.usefixtures("within_a_minute")
def test_two_replicas_share_one_limit_and_one_budget(
    standin: StandIn, redis_server: RedisServer, tmp_path: Any
) -> None:
    config = budget_config(standin, limits={"rpm": 6}, budget={"usd": 4 * CALL_COST, "period": "day"})
    config["state"] = {"url": redis_server.url, "key_prefix": f"replicas{time.monotonic_ns()}:"}
    first = GatewayProcess(config, tmp_path / "a").start()
    second = GatewayProcess(config, tmp_path / "b").start()
    try:
        statuses = []
        for i in range(8):
            replica = first if i % 2 == 0 else second
            statuses += asyncio.run(burst(replica.url + "/v1", AGENT_KEY, 1))
    finally:
        first.stop()
        second.stop()
    assert statuses[:4] == [200, 200, 200, 200]  # the shared budget admits 4
    assert statuses[4:] == [429, 429, 429, 429]
    assert len(standin.requests) == 4


@pytest.mark.parametrize("mode", ["fail_closed", "fail_open"])
def test_redis_going_away_and_coming_back(standin: StandIn, gateway_factory: Any, mode: str) -> None:
    with RedisServer() as redis:
        config = budget_config(standin, budget={"usd": 100, "period": "day"}, limits={"rpm": 1000})
        config["state"] = {"url": redis.url, "on_store_error": mode, "fail_fast_ms": 100, "shutdown_retry_seconds": 1}
        gateway = gateway_factory(config)
        assert asyncio.run(burst(gateway.base_url, AGENT_KEY, 2)) == [200, 200]
        redis.kill()
        down = asyncio.run(burst(gateway.base_url, AGENT_KEY, 3))
        assert down == ([503, 503, 503] if mode == "fail_closed" else [200, 200, 200])
        with gateway.http() as http:
            ready = http.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["state_store"] == "unreachable"
        failures = httpx.get(gateway.url + "/metrics").text  # the decisions are counted
        outcome = "refused_closed" if mode == "fail_closed" else "admitted_open"
        assert f'agentgw_store_failures_total{{outcome="{outcome}"}} 3.0' in failures
        redis.start()
        deadline = time.monotonic() + 10
        while asyncio.run(burst(gateway.base_url, AGENT_KEY, 1)) != [200] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert asyncio.run(burst(gateway.base_url, AGENT_KEY, 2)) == [200, 200]
    with gateway.http() as http:
        http.get("/v1/usage")
    admitted, _ = ledger_spend(gateway.ledger_path)
    assert admitted == sum(1 for e in standin.requests)  # every call that reached the provider is in the ledger


def test_budgets_endpoint_is_scoped(standin: StandIn, gateway_factory: Any) -> None:
    config = budget_config(standin, budget={"usd": 1, "period": "month"}, agent_budget={"usd": 0.5, "period": "day"})
    config["keys"][1]["budget"] = {"usd": 0.25, "period": "total"}
    gateway = gateway_factory(config)
    asyncio.run(burst(gateway.base_url, AGENT_KEY, 1))
    mine = {(b["scope"]["kind"], b["scope"]["name"]): b for b in budgets(gateway, AGENT_KEY)}
    assert set(mine) == {("team", "research"), ("agent", "crawler"), ("key", "crawler-key")}
    assert mine[("key", "crawler-key")]["spent_usd"] == pytest.approx(CALL_COST)
    assert mine[("key", "crawler-key")]["resets_at"] is None  # a total budget never resets
    with gateway.http(AGENT_KEY) as http:
        assert http.get("/v1/budgets", params={"team": "ops"}).status_code == 403
        assert http.get("/v1/budgets", params={"agent": "someone"}).status_code == 403


def test_sigterm_settles_what_was_admitted(standin: StandIn, redis_server: RedisServer, tmp_path: Any) -> None:
    config = budget_config(standin, budget={"usd": 1, "period": "day"})
    config["state"] = {"url": redis_server.url, "key_prefix": f"drain{time.monotonic_ns()}:"}
    process = GatewayProcess(config, tmp_path).start()
    asyncio.run(burst(process.url + "/v1", AGENT_KEY, 5))
    process.signal(signal.SIGTERM)
    process.wait()
    restarted = GatewayProcess(config, tmp_path / "again").start()
    try:
        with httpx.Client(base_url=restarted.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as http:
            [team] = [
                b
                for b in http.get("/v1/budgets", params={"team": "research"}).json()["data"]
                if b["scope"]["kind"] == "team"
            ]
    finally:
        restarted.stop()
    assert team["spent_usd"] == pytest.approx(5 * CALL_COST) and team["reserved_usd"] == 0


def test_team_and_key_budgets_are_gauged_at_scrape(standin: StandIn, gateway_factory: Any) -> None:
    config = budget_config(standin, budget={"usd": 1, "period": "month"}, agent_budget={"usd": 1, "period": "day"})
    config["keys"][1]["budget"] = {"usd": 0.25, "period": "total"}
    gateway = gateway_factory(config)
    gateway.client(AGENT_KEY).chat.completions.create(model="priced", messages=USER, max_tokens=MAX_TOKENS)
    text = httpx.get(gateway.url + "/metrics").text
    gauges = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith(("agentgw_budget_cap_usd{", "agentgw_budget_remaining_usd{"))
    }
    assert gauges['agentgw_budget_cap_usd{scope="team",name="research"}'] == 1
    assert gauges['agentgw_budget_remaining_usd{scope="team",name="research"}'] == pytest.approx(1 - CALL_COST)
    assert gauges['agentgw_budget_cap_usd{scope="key",name="crawler-key"}'] == 0.25
    assert gauges['agentgw_budget_remaining_usd{scope="key",name="crawler-key"}'] == pytest.approx(0.25 - CALL_COST)
    assert not any('scope="agent"' in name for name in gauges)  # per caller-chosen id: /v1/budgets only


@pytest.mark.usefixtures("within_a_minute")
def test_a_routes_target_whose_model_limit_is_full_is_skipped(standin: StandIn, gateway_factory: Any) -> None:
    config = budget_config(standin, limits={"per_model": {"priced": {"rpm": 1}}})
    config["models"]["backup"] = {"provider": "standin-anthropic", "upstream": "gpt-x"}
    config["routes"] = {**config.get("routes", {}), "pair": {"candidates": ["priced", "backup"]}}
    gateway = gateway_factory(config)
    client = gateway.client(AGENT_KEY)
    answered = [
        client.chat.completions.with_raw_response.create(model="pair", messages=USER).headers["x-agentgw-model"]
        for _ in range(3)
    ]
    assert answered == ["priced", "backup", "backup"]  # priced's own rpm is full: the route goes on without it
    with pytest.raises(openai.RateLimitError) as info:  # asked for by name, the full model is refused
        client.chat.completions.create(model="priced", messages=USER)
    assert "model priced" in info.value.body["message"]


@pytest.mark.parametrize("model", ["priced", "free"])
def test_concurrency_leases_are_given_back_under_load(
    standin: StandIn, gateway_factory: Any, state: Any, model: str
) -> None:
    """Waves of simultaneous calls, together many times a key's concurrency limit: every lease a call
    takes is given back when it ends (with limits and budgets on, as a loaded gateway has them), so no
    wave finds the limit full of leases from calls long finished. Also for a model with no price, whose
    calls hold and spend nothing (on Redis a settlement of zero once failed, leaving its lease behind)."""
    config = budget_config(standin, budget={"usd": 1000, "period": "day"}, task_budget={"usd": 1000, "period": "total"})
    config["models"]["free"] = {"provider": "standin-openai", "upstream": "gpt-x"}
    config["keys"][1]["limits"] = {"rpm": 100_000, "concurrent": 12}
    config["state"] = state
    gateway = gateway_factory(config)
    with gateway.http(AGENT_KEY) as http:
        for wave in range(12):  # 144 calls, 12 at a time
            statuses = asyncio.run(burst(gateway.base_url, AGENT_KEY, 12, model, **{"x-task-id": f"wave-{wave}"}))
            assert statuses == [200] * 12
            assert http.get("/v1/budgets").status_code == 200  # answers once the wave's settlements landed


def _scripts_run(server: RedisServer) -> int:
    import redis

    client = redis.Redis.from_url(server.url)
    try:
        return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
    finally:
        client.close()


def test_replicas_admit_busy_calls_from_slices_and_the_store_sees_every_cent(
    standin: StandIn, redis_server: RedisServer, tmp_path: Any
) -> None:
    config = budget_config(standin, limits={"rpm": 100_000, "concurrent": 1_000}, budget={"usd": 50, "period": "day"})
    config["state"] = {"url": redis_server.url, "key_prefix": f"slices{time.monotonic_ns()}:"}
    first = GatewayProcess(config, tmp_path / "a").start()
    second = GatewayProcess(config, tmp_path / "b").start()
    try:
        statuses = []
        for round in range(3):
            if round == 1:  # each replica has seen the call shape once: from now on it draws slices
                before = _scripts_run(redis_server)
            statuses += asyncio.run(burst(first.url + "/v1", AGENT_KEY, 20))
            statuses += asyncio.run(burst(second.url + "/v1", AGENT_KEY, 20))
        assert statuses == [200] * 120
        time.sleep(1.0)  # idle slices go back by themselves (state.slices.max_age_ms)
        scripts = _scripts_run(redis_server) - before
        with httpx.Client(base_url=second.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}) as http:
            data = http.get("/v1/budgets", params={"team": "research"}).json()["data"]
            sliced = http.get("/metrics").text
    finally:
        first.stop()
        second.stop()
    assert scripts < 80  # for the last 80 calls; per call it would be 160: one admission and one settlement each
    assert "agentgw_state_slices_drawn_total" in sliced
    [calls] = [line for line in sliced.splitlines() if line.startswith("agentgw_state_sliced_calls_total")]
    assert float(calls.split()[-1]) >= 20  # of the second replica's last 40 calls
    [team] = [b for b in data if b["scope"]["kind"] == "team"]
    assert team["spent_usd"] == pytest.approx(120 * CALL_COST) and team["reserved_usd"] == 0
