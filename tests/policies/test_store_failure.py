"""The store going away is survivable: StoreUnavailable fast (never a raw client error), the configured
fail-open / fail-closed decision, settles that do not raise, and recovery when Redis is back (with its
script cache empty)."""

from __future__ import annotations

import asyncio
import time

import pytest

from policies.budgets import Budget, BudgetEngine
from policies.config import StateConfig
from policies.limits import LimitRule, RateLimiter
from policies.state import Scope, StoreFailurePolicy, StoreUnavailable, open_store
from policies.state.redis_store import RedisStore
from tests.policies.conftest import redis_config
from tests.redis_server import RedisServer, free_port

USD = 10**9
TEAM = Scope.of_team("research")
RULES = [LimitRule(TEAM, rpm=1000, tpm=100_000, concurrent=10)]
BUDGETS = [Budget(TEAM, 100 * USD, "day")]


async def admit_and_reserve(limiter: RateLimiter, engine: BudgetEngine) -> None:
    admission = await limiter.admit(RULES, 100)
    reservation = await engine.reserve(BUDGETS, USD)
    await reservation.settle(USD // 2)
    await admission.settle(50)


async def fails_fast(call: object, within: float = 1.0) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await call  # type: ignore[misc]
    assert time.monotonic() - started < within


def test_redis_killed_mid_run_then_back(own_redis: RedisServer) -> None:
    state = redis_config(own_redis, fail_fast_ms=200)

    async def scenario() -> None:
        store = open_store(state)
        assert isinstance(store, RedisStore)
        limiter, engine = RateLimiter(store), BudgetEngine(store)
        await admit_and_reserve(limiter, engine)
        in_flight = await limiter.admit(RULES, 100)
        held = await engine.reserve(BUDGETS, USD)

        own_redis.kill()
        await fails_fast(limiter.admit(RULES, 100))
        await fails_fast(engine.reserve(BUDGETS, USD))
        await fails_fast(engine.status(BUDGETS[0]))
        await fails_fast(store.ping())
        started = time.monotonic()  # while failing fast, no network at all
        for _ in range(100):
            with pytest.raises(StoreUnavailable, match="failing fast"):
                await engine.reserve(BUDGETS, USD)
        assert time.monotonic() - started < 0.1
        # Settling after the store went away does not raise: the settle and the lease release wait to be
        # retried (the token correction cannot be: it is counted as lost, the estimate stands).
        assert await held.settle(USD) == ()
        await in_flight.settle(50)
        assert (engine.retries.pending, limiter.retries.pending) == (1, 1)
        assert limiter.retries.lost == {"tokens": 1}

        own_redis.start()  # empty: no data, no loaded scripts
        assert await store.client.script_exists(store._admit.sha) == [False]
        await asyncio.sleep(0.25)  # the fail-fast pause ends
        await admit_and_reserve(limiter, engine)  # NOSCRIPT answered by loading the scripts again
        assert await store.client.script_exists(store._admit.sha) == [True]
        while engine.retries.pending or limiter.retries.pending:  # the queued ones land (on an empty store)
            await asyncio.sleep(0.05)
        assert (engine.retries.landed, limiter.retries.landed) == ({"budget": 1}, {"lease": 1})
        status = await engine.status(BUDGETS[0])
        assert (status.spent, status.reserved) == (USD // 2, 0)  # the restart lost the hold: nothing to settle
        await store.ping()
        await store.aclose()

    asyncio.run(scenario())


def test_nothing_listening_is_unavailable_quickly() -> None:
    state = StateConfig.model_validate({"url": f"redis://127.0.0.1:{free_port()}/0", "fail_fast_ms": 0})

    async def scenario() -> None:
        store = open_store(state)
        limiter, engine = RateLimiter(store), BudgetEngine(store)
        for _ in range(3):
            await fails_fast(limiter.admit(RULES, 1), within=0.5)
            await fails_fast(engine.reserve(BUDGETS, 1), within=0.5)
        await store.aclose()

    asyncio.run(scenario())


def test_store_errors_never_escape_raw(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        store = open_store(redis_config(redis_server))
        assert isinstance(store, RedisStore)
        # A store reply that is an error (here: a counter someone overwrote) is StoreUnavailable too.
        await store.client.set(f"{store._prefix}{TEAM.state_key}:r:rpm:60", "not a hash")
        with pytest.raises(StoreUnavailable, match="ResponseError"):
            await RateLimiter(store).admit(RULES, 1)
        await store.ping()  # and does not make the store fail fast
        await store.aclose()

    asyncio.run(scenario())


def test_failure_policy() -> None:
    error = StoreUnavailable("state store redis://x is unreachable")
    open_policy, closed_policy = StoreFailurePolicy("fail_open"), StoreFailurePolicy("fail_closed")
    assert [open_policy.admit_anyway(error) for _ in range(3)] == [True] * 3
    assert [closed_policy.admit_anyway(error) for _ in range(2)] == [False] * 2
    assert (open_policy.admitted_open, open_policy.refused_closed) == (3, 0)
    assert (closed_policy.admitted_open, closed_policy.refused_closed) == (0, 2)
