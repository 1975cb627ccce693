"""Strict local slices on a real Redis: calls admitted in memory from slices drawn from the store, given
back exactly, never past a cap or limit, across two replicas sharing the store."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from policies.budgets import Budget, BudgetEngine
from policies.budgets import BudgetExceeded as BudgetRefusal
from policies.budgets.model import ThresholdCrossing
from policies.calls import CallHold, CallPolicies
from policies.config import SlicesConfig, StateConfig
from policies.limits import LimitRule, RateLimiter
from policies.limits import RateLimited as LimitRefusal
from policies.state import open_store
from policies.state.scope import Scope
from tests.policies.conftest import redis_config
from tests.redis_server import RedisServer

HUGE = 10**9

Scenario = Callable[..., Coroutine[Any, Any, None]]


def scenario(test: Scenario) -> Callable[..., None]:
    """Run an async test body in its own event loop (the store's client belongs to it)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


TEAM = Scope.of_team("t")


class Replica:
    """One gateway process's policies over a shared store."""

    def __init__(self, state: StateConfig, slices: SlicesConfig | None) -> None:
        self.store = open_store(state)
        self.limiter = RateLimiter(self.store)
        self.budgets = BudgetEngine(self.store)
        self.calls = CallPolicies(self.store, self.limiter, self.budgets, slices=slices)

    async def admit(self, rules: tuple[LimitRule, ...], budgets: list[Budget], tokens: int, cost: int) -> CallHold:
        return await self.calls.admit(rules, budgets, tokens, cost)

    async def flush(self) -> None:
        assert self.calls.slices is not None
        await self.calls.slices.flush()

    async def close(self) -> None:
        if self.calls.slices is not None:
            await self.calls.slices.flush()
        await self.store.aclose()


@pytest.fixture
def state(redis_server: RedisServer) -> StateConfig:
    return redis_config(redis_server, timeout_ms=5_000)  # the suite may load the VM


async def counter(replica: Replica, rules: tuple[LimitRule, ...], kind: str) -> int:
    plan = replica.limiter.plan(rules)
    limit = plan.requests[0] if kind == "rpm" else plan.tokens[0]
    client: Any = replica.store.client  # type: ignore[attr-defined]
    prefix = replica.store._prefix  # type: ignore[attr-defined]
    values = await client.hgetall(prefix + limit.key)
    return int(values.get(b"c", 0))


@scenario
async def test_a_busy_shape_is_admitted_from_slices_and_given_back_exactly(state: StateConfig) -> None:
    replica = Replica(state, SlicesConfig(max_age_ms=60_000))
    rules = (LimitRule(TEAM, rpm=HUGE, tpm=HUGE, concurrent=10_000),)
    budget = Budget(TEAM, cap=10**15, period="month")
    try:
        for _ in range(300):
            hold = await replica.admit(rules, [budget], tokens=100, cost=1_000)
            assert hold.headers is not None and hold.headers.remaining_requests is not None
            await hold.settle(400, 50)
        assert replica.calls.slices is not None
        drawn = replica.calls.slices.drawn
        assert drawn <= 12, drawn  # 8, 16, 32, 64, 64, ... calls per slice instead of a round trip each
        await replica.flush()
        _, _, (account,) = replica.budgets.accounts_for([budget], time.time())
        assert await replica.store.balance(account, int(time.time() * 1000)) == (300 * 400, 0)
        assert await counter(replica, rules, "rpm") == 300
        assert await counter(replica, rules, "tpm") == 300 * 50
        lease_key = replica.store._prefix + replica.limiter.plan(rules).lease_keys[0]  # type: ignore[attr-defined]
        assert await replica.store.client.zcard(lease_key) == 0  # type: ignore[attr-defined]
    finally:
        await replica.close()


@scenario
async def test_a_slice_counts_calls_that_are_still_running(state: StateConfig) -> None:
    replica = Replica(state, SlicesConfig(max_age_ms=60_000))
    rules = (LimitRule(TEAM, rpm=HUGE, concurrent=10_000),)
    budget = Budget(TEAM, cap=10**15, period="month")
    try:
        first = await replica.admit(rules, [budget], tokens=10, cost=1_000)
        await first.settle(1_000, 10)
        running = [await replica.admit(rules, [budget], tokens=10, cost=1_000) for _ in range(5)]
        await replica.flush()  # closes the slice: it goes back only when its calls have ended
        _, _, (account,) = replica.budgets.accounts_for([budget], time.time())
        spent, reserved = await replica.store.balance(account, int(time.time() * 1000))
        assert spent == 1_000 and reserved >= 5 * 1_000
        for hold in running:
            await hold.settle(700, 10)
        await replica.flush()
        assert await replica.store.balance(account, int(time.time() * 1000)) == (1_000 + 5 * 700, 0)
    finally:
        await replica.close()


async def _burst(replicas: list[Replica], rules: tuple[LimitRule, ...], budgets: list[Budget], calls: int) -> int:
    admitted = 0

    async def one(replica: Replica) -> None:
        nonlocal admitted
        try:
            hold = await replica.admit(rules, budgets, tokens=10, cost=1_000)
        except (BudgetRefusal, LimitRefusal):
            return
        admitted += 1
        await asyncio.sleep(0.001)
        await hold.settle(1_000, 10)

    await asyncio.gather(*(one(replicas[i % len(replicas)]) for i in range(calls)))
    return admitted


@pytest.mark.parametrize("replicas", [1, 2])
@scenario
async def test_bursts_against_a_cap_admit_what_fits_and_never_more(state: StateConfig, replicas: int) -> None:
    fleet = [Replica(state, SlicesConfig(max_age_ms=60_000)) for _ in range(replicas)]
    budget = Budget(TEAM, cap=100 * 1_000, period="month")  # exactly 100 calls fit
    try:
        admitted = 0
        for _ in range(10):  # waves of 20 parallel calls: slices are drawn, shrink, then stop near the cap
            admitted += await _burst(fleet, (), [budget], 20)
        for replica in fleet:
            await replica.flush()
        _, _, (account,) = fleet[0].budgets.accounts_for([budget], time.time())
        spent, reserved = await fleet[0].store.balance(account, int(time.time() * 1000))
        assert spent == admitted * 1_000 <= 100 * 1_000 and reserved == 0
        assert admitted >= 95, admitted
        assert all(r.calls.slices is not None and r.calls.slices.drawn > 0 for r in fleet)
    finally:
        for replica in fleet:
            await replica.close()


@scenario
async def test_sequential_calls_fill_a_budget_exactly(state: StateConfig) -> None:
    replica = Replica(state, SlicesConfig(max_age_ms=60_000))
    budget = Budget(TEAM, cap=200 * 1_000, period="month")
    try:
        admitted = 0
        with pytest.raises(BudgetRefusal):
            for _ in range(201):
                hold = await replica.admit((), [budget], tokens=10, cost=1_000)
                await hold.settle(1_000, 10)
                admitted += 1
        assert admitted == 200
        assert replica.calls.slices is not None and replica.calls.slices.drawn > 0
    finally:
        await replica.close()


@scenario
async def test_calls_in_flight_never_pass_a_concurrency_limit_across_replicas(state: StateConfig) -> None:
    fleet = [Replica(state, SlicesConfig(max_age_ms=60_000)) for _ in range(2)]
    rules = (LimitRule(TEAM, concurrent=40),)
    running = peak = admitted = 0

    async def one(replica: Replica) -> None:
        nonlocal running, peak, admitted
        try:
            hold = await replica.admit(rules, [], tokens=10, cost=0)
        except LimitRefusal:
            return
        running += 1
        admitted += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        await hold.settle(0, 10)

    try:
        for _ in range(5):
            await asyncio.gather(*(one(fleet[i % 2]) for i in range(60)))
        assert peak <= 40 and admitted >= 40
        assert sum(r.calls.slices.drawn for r in fleet if r.calls.slices is not None) > 0
        for replica in fleet:
            await replica.flush()
        lease_key = fleet[0].store._prefix + fleet[0].limiter.plan(rules).lease_keys[0]  # type: ignore[attr-defined]
        assert await fleet[0].store.client.zcard(lease_key) == 0  # type: ignore[attr-defined]
    finally:
        for replica in fleet:
            await replica.close()


@scenario
async def test_alerts_reached_by_a_slice_are_delivered_once(state: StateConfig) -> None:
    replica = Replica(state, SlicesConfig(max_age_ms=60_000))
    budget = Budget(TEAM, cap=10**9, period="month", alert_thresholds=(0.0001,))  # $0.0001: crossed at 100,000
    crossings: list[ThresholdCrossing] = []
    try:
        for _ in range(150):
            hold = await replica.admit((), [budget], tokens=10, cost=1_000)
            assert await hold.settle(1_000, 10, on_late=crossings.extend) == ()
        await replica.flush()
        assert [c.threshold for c in crossings] == [0.0001]
        assert crossings[0].spent >= 100_000
    finally:
        await replica.close()


@scenario
async def test_small_limits_are_admitted_by_the_store_alone(state: StateConfig) -> None:
    replica = Replica(state, SlicesConfig())
    rules = (LimitRule(TEAM, rpm=30),)  # 1/20 of the room is less than two calls: no slice, exact per call
    try:
        admitted = 0
        with pytest.raises(LimitRefusal):
            for _ in range(31):
                hold = await replica.admit(rules, [], tokens=1, cost=0)
                await hold.settle(0, 1)
                admitted += 1
        assert admitted == 30
        assert replica.calls.slices is not None and replica.calls.slices.drawn == 0
    finally:
        await replica.close()


@scenario
async def test_slices_are_off_on_memory_state_and_when_disabled(redis_server: RedisServer) -> None:
    memory = Replica(StateConfig(), SlicesConfig())
    disabled = Replica(redis_config(redis_server), SlicesConfig(enabled=False))
    assert memory.calls.slices is None and disabled.calls.slices is None
    await disabled.close()


@scenario
async def test_a_concurrency_limit_fills_exactly(state: StateConfig) -> None:
    replica = Replica(state, SlicesConfig(max_age_ms=60_000))
    rules = (LimitRule(TEAM, concurrent=40),)
    try:
        warm = await replica.admit(rules, [], tokens=1, cost=0)
        await warm.settle(0, 1)
        holds = await asyncio.gather(*(replica.admit(rules, [], tokens=1, cost=0) for _ in range(40)))
        with pytest.raises(LimitRefusal):  # a slice's unused leases went back before this was refused
            await replica.admit(rules, [], tokens=1, cost=0)
        assert replica.calls.slices is not None and replica.calls.slices.drawn > 0
        await holds[0].settle(0, 1)
        await replica.flush()
        holds[0] = await replica.admit(rules, [], tokens=1, cost=0)  # its lease is free again
        for hold in holds:
            await hold.settle(0, 1)
    finally:
        await replica.close()


@scenario
async def test_random_traffic_on_two_replicas_leaves_the_store_exact(state: StateConfig) -> None:
    """Many shapes, calls of random size and length, some ending before others start, two replicas:
    once everything is given back, Redis holds exactly what the calls used, and nothing else."""
    import random

    rng = random.Random(15)
    fleet = [Replica(state, SlicesConfig(max_age_ms=age)) for age in (5, 60_000)]  # slices closed by age, by use
    team = LimitRule(TEAM, rpm=HUGE, tpm=HUGE, concurrent=5_000)
    agents = [Scope("t", "agent", f"a{i}") for i in range(4)]
    cap = 10**12
    spent = requests = tokens = 0

    async def one(i: int) -> None:
        nonlocal spent, requests, tokens
        agent = agents[i % len(agents)]
        rules = (team, LimitRule(agent, rpm=HUGE, concurrent=1_000))
        budgets = [Budget(TEAM, cap, "month"), Budget(agent, cap, "day")]
        bound, cost, used = rng.randint(10, 500), rng.randint(1, 10_000), rng.randint(0, 500)
        await asyncio.sleep(i / 600)  # arriving over a second
        hold = await fleet[i % 2].admit(rules, budgets, tokens=bound, cost=cost)
        await asyncio.sleep(rng.random() / 50)
        actual = rng.randint(0, cost)
        await hold.settle(actual, used)
        spent += actual
        requests += 1
        tokens += used

    try:
        await asyncio.gather(*(one(i) for i in range(600)))
        for replica in fleet:
            await replica.flush()
        assert sum(r.calls.slices.admitted for r in fleet if r.calls.slices is not None) > 300
        _, _, (account, _) = fleet[0].budgets.accounts_for(
            [Budget(TEAM, cap, "month"), Budget(agents[0], cap, "day")], time.time()
        )
        assert await fleet[0].store.balance(account, int(time.time() * 1000)) == (spent, 0)
        assert await counter(fleet[0], (team,), "rpm") == requests
        assert await counter(fleet[0], (team,), "tpm") == tokens
        lease_key = fleet[0].store._prefix + fleet[0].limiter.plan((team,)).lease_keys[0]  # type: ignore[attr-defined]
        assert await fleet[0].store.client.zcard(lease_key) == 0  # type: ignore[attr-defined]
    finally:
        for replica in fleet:
            await replica.close()


class CountingLedger:
    """A spend ledger that knows one figure and counts how often it is asked."""

    def __init__(self, spent: int) -> None:
        self.spent = spent
        self.asked = 0

    async def spent_nanos(self, team: str, kind: str, name: str, since: float | None) -> int:
        self.asked += 1
        await asyncio.sleep(0.01)  # a database query
        return self.spent


@scenario
async def test_calls_that_find_an_account_missing_at_once_share_one_rebuild(state: StateConfig) -> None:
    replica = Replica(state, None)
    ledger = CountingLedger(5_000)
    replica.budgets.spend = ledger
    budget = Budget(TEAM, 10**9, "month")
    try:
        holds = await asyncio.gather(*(replica.admit((), [budget], tokens=1, cost=100) for _ in range(20)))
        assert ledger.asked == 1 and replica.budgets.rebuilt == 1
        for hold in holds:
            await hold.settle(100, 1)
        _, _, (account,) = replica.budgets.accounts_for([budget], time.time())
        assert await replica.store.balance(account, int(time.time() * 1000)) == (5_000 + 20 * 100, 0)
    finally:
        await replica.close()
