"""Redis stalling under a busy gateway (SIGSTOP, then SIGCONT): the settlements of the calls that end
meanwhile are retried until they land, so the budget's spend equals the ledger's cost and nothing stays
reserved or leased (issue 12: $0.88 of $1.00 shown spent, $0.547 held for 15 minutes)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import openai

from tests.gateway_harness import ADMIN_KEY, AGENT_KEY
from tests.integration.test_budgets_and_limits import MAX_TOKENS, PRICE_PER_MTOK, USER, budget_config, ledger_spend
from tests.integration.test_telemetry import metric_samples, total
from tests.redis_server import RedisServer
from tests.standin import StandIn

STREAMS = 50


async def streams(base_url: str, calls: int, *models: str) -> list[str]:
    """`calls` simultaneous streamed chats, to each of `models` in turn; the text each received."""
    client = openai.AsyncOpenAI(
        base_url=base_url,
        api_key=AGENT_KEY,
        max_retries=0,
        timeout=30,
        http_client=openai.DefaultAsyncHttpxClient(limits=httpx.Limits(max_connections=calls)),
    )

    async def one(model: str) -> str:
        stream = await client.chat.completions.create(model=model, messages=USER, max_tokens=MAX_TOKENS, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    try:
        return list(await asyncio.gather(*(one(models[i % len(models)]) for i in range(calls))))
    finally:
        await client.close()


def settled_team_budget(gateway: Any, within: float = 20) -> dict[str, Any]:
    """The team's budget once the store answers (a 503 until then) and nothing is reserved any more,
    or as it is at the deadline."""
    deadline = time.monotonic() + within
    with gateway.http(ADMIN_KEY) as http:
        while True:
            response = http.get("/v1/budgets", params={"team": "research"})
            if response.status_code == 200:
                [team] = [b for b in response.json()["data"] if b["scope"]["kind"] == "team"]
                if not team["reserved_usd"] or time.monotonic() > deadline:
                    return dict(team)
            assert response.status_code in (200, 503) and time.monotonic() < deadline, response.text
            time.sleep(0.1)


def test_settlements_land_after_redis_stalls_mid_stream(standin: StandIn, gateway_factory: Any) -> None:
    with RedisServer() as redis:
        config = budget_config(standin, budget={"usd": 1, "period": "day"}, limits={"concurrent": STREAMS})
        for name, seconds in (("priced-1s", "1"), ("priced-1.6s", "1.6")):  # each streams after that, for $0.005
            config["models"][name] = {
                "provider": "standin-openai",
                "upstream": f"slow-{seconds}",
                "input_per_mtok": 0,
                "output_per_mtok": PRICE_PER_MTOK,
            }
        config["providers"]["standin-openai"]["timeout"] = {"connect": 2, "read": 5}
        # The defaults: a command times out after 0.5 s, then the store fails fast for 1 s. Calls that end
        # at 1 s send their settles into the stall (Redis runs them when it resumes: their replies are
        # lost); calls that end at 1.6 s find the store failing fast and cannot send them at all.
        config["state"] = {"url": redis.url, "shutdown_retry_seconds": 1}  # Redis is left stopped at the end
        gateway = gateway_factory(config)
        asyncio.run(streams(gateway.base_url, 1, "priced"))  # warm: the store's scripts are loaded

        async def stall_mid_stream() -> list[str]:
            calls = asyncio.ensure_future(streams(gateway.base_url, STREAMS, "priced-1s", "priced-1.6s"))
            deadline = time.monotonic() + 10
            while len(standin.requests) < 1 + STREAMS and time.monotonic() < deadline:
                await asyncio.sleep(0.01)  # every call admitted (reserved) and at the provider
            redis.pause()
            try:
                await asyncio.sleep(3)  # the calls end meanwhile: their settlements cannot land
            finally:
                redis.resume()
            return await calls

        texts = asyncio.run(stall_mid_stream())
        assert len(texts) == STREAMS and all(texts)
        deadline = time.monotonic() + 20
        team = settled_team_budget(gateway)
        with gateway.http() as http:
            http.get("/v1/usage")  # flush the ledger
        admitted, nanos = ledger_spend(gateway.ledger_path)
        assert admitted == 1 + STREAMS
        assert team["reserved_usd"] == 0
        assert round(team["spent_usd"] * 1e9) == nanos  # spend equals the ledger's cost, to the nano-dollar
        samples = metric_samples(gateway)
        while total(samples, "agentgw_settlements_pending") and time.monotonic() < deadline:
            time.sleep(0.1)  # the leases' releases may land a little after the budgets'
            samples = metric_samples(gateway)
        assert total(samples, "agentgw_settlements_pending") == 0
        assert total(samples, "agentgw_settlements_deferred_total", kind="budget") > 0
        assert total(samples, "agentgw_settlements_deferred_total", kind="lease") > 0
        assert total(samples, "agentgw_settlements_lost_total") == 0
        assert len(asyncio.run(streams(gateway.base_url, STREAMS, "priced"))) == STREAMS  # no slot stayed taken
