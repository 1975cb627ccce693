"""Settlements that must land: idempotent settles and cancels on both stores, the retry queue, and a
Redis stalled with SIGSTOP while settles are under way."""

from __future__ import annotations

import asyncio
import time

import pytest

from policies.budgets import Budget, BudgetEngine
from policies.config import StateConfig
from policies.limits import LimitRule, RateLimited, RateLimiter
from policies.state import Account, RetryQueue, Scope, StateStore, StoreUnavailable, open_store
from tests.policies.conftest import FakeClock, redis_config
from tests.policies.test_budgets import T0, run_with
from tests.redis_server import RedisServer

USD = 10**9
TEAM = Scope.of_team("research")
ACCOUNTS = [Account("{research}:team:research:b:total", 10 * USD), Account("{research}:key:k:b:total", 10 * USD)]
NOW = int(T0 * 1000)


def test_a_settle_retried_after_a_lost_reply_counts_once(state: StateConfig) -> None:
    async def scenario(store: StateStore) -> None:
        await store.reserve(ACCOUNTS, "r1|300", 300, NOW, NOW + 60_000)
        for _ in range(3):  # the same settle, again and again: the hold is consumed once
            await store.settle(ACCOUNTS, "r1|300", 300, 200)
        assert [await store.balance(a, NOW) for a in ACCOUNTS] == [(200, 0), (200, 0)]

    run_with(state, scenario)


def test_a_hold_that_lapsed_still_takes_its_late_settle_once(state: StateConfig) -> None:
    async def scenario(store: StateStore) -> None:
        await store.reserve(ACCOUNTS, "r1|300", 300, NOW, NOW + 60_000)
        assert await store.balance(ACCOUNTS[0], NOW + 61_000) == (0, 0)  # lapsed: the money is free again
        for _ in range(2):
            await store.settle(ACCOUNTS, "r1|300", 300, 250)  # the call did run: its spend counts, once
        assert [await store.balance(a, NOW + 62_000) for a in ACCOUNTS] == [(250, 0), (250, 0)]

    run_with(state, scenario)


def test_a_hold_of_nothing_settles_and_cancels(state: StateConfig) -> None:
    """A call to a model with no price holds and spends nothing; its settle and its cancel still land
    (Redis refuses "-0" as an integer: the scripts never send it)."""

    async def scenario(store: StateStore) -> None:
        await store.reserve(ACCOUNTS, "free|0", 0, NOW, NOW + 60_000)
        await store.settle(ACCOUNTS, "free|0", 0, 0)
        await store.reserve(ACCOUNTS, "gone|0", 0, NOW, NOW + 60_000)
        await store.cancel(ACCOUNTS, "gone|0", 0, NOW + 60_000)
        assert [await store.balance(a, NOW) for a in ACCOUNTS] == [(0, 0), (0, 0)]

    run_with(state, scenario)


def test_a_second_copy_of_a_reservation_holds_nothing_more(state: StateConfig) -> None:
    async def scenario(store: StateStore) -> None:
        for _ in range(2):  # a reply lost, the command sent again: both copies run
            await store.reserve(ACCOUNTS, "r1|300", 300, NOW, NOW + 60_000)
        assert await store.balance(ACCOUNTS[0], NOW) == (0, 300)
        await store.settle(ACCOUNTS, "r1|300", 300, 100)
        assert await store.balance(ACCOUNTS[0], NOW) == (100, 0)

    run_with(state, scenario)


def test_a_cancel_undoes_a_reservation_whether_it_landed_before_or_after(state: StateConfig) -> None:
    async def scenario(store: StateStore) -> None:
        await store.reserve(ACCOUNTS, "early|300", 300, NOW, NOW + 60_000)
        await store.cancel(ACCOUNTS, "early|300", 300, NOW + 60_000)
        with pytest.raises(StoreUnavailable, match="cancelled"):  # a copy after the cancel: nothing
            await store.reserve(ACCOUNTS, "early|300", 300, NOW, NOW + 60_000)
        await store.cancel(ACCOUNTS, "late|400", 400, NOW + 60_000)  # its reply was lost: it may land yet
        with pytest.raises(StoreUnavailable, match="cancelled"):
            await store.reserve(ACCOUNTS, "late|400", 400, NOW, NOW + 60_000)  # the late copy changes nothing
        await store.cancel(ACCOUNTS, "late|400", 400, NOW + 60_000)  # idempotent
        assert [await store.balance(a, NOW) for a in ACCOUNTS] == [(0, 0), (0, 0)]
        await store.reserve(ACCOUNTS, "next|100", 100, NOW, NOW + 60_000)  # others reserve as ever
        assert await store.balance(ACCOUNTS[1], NOW) == (0, 100)

    run_with(state, scenario)


class Flaky:
    """A write that fails `failures` times before it lands."""

    kind = "budget"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0

    async def attempt(self) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise StoreUnavailable("down")


def test_the_retry_queue_retries_with_backoff_until_each_write_lands() -> None:
    async def scenario() -> None:
        queue = RetryQueue(first_delay=0.001, max_delay=0.01, jitter=lambda: 1.0)
        writes = [Flaky(failures) for failures in (1, 5, 0)]
        for write in writes:
            queue.add(write)
        while queue.pending:
            await asyncio.sleep(0.005)
        assert [w.attempts for w in writes] == [2, 6, 1]
        assert (queue.deferred, queue.landed, queue.lost) == ({"budget": 3}, {"budget": 3}, {})

    asyncio.run(scenario())


def test_shutdown_retries_what_is_left_at_once() -> None:
    async def scenario() -> None:
        queue = RetryQueue(first_delay=1.0, max_delay=60.0, jitter=lambda: 1.0)
        writes = [Flaky(3) for _ in range(3)]
        for write in writes:
            queue.add(write)
        await asyncio.sleep(0.01)  # first attempts failed: the worker waits a second, then two...
        started = time.monotonic()
        await queue.drain(10)  # ...unless the gateway is stopping: then it keeps trying, quickly
        assert time.monotonic() - started < 5
        assert (queue.pending, queue.landed, queue.lost) == (0, {"budget": 3}, {})

    asyncio.run(scenario())


def test_the_retry_queue_is_bounded_and_shutdown_counts_what_never_landed() -> None:
    async def scenario() -> None:
        queue = RetryQueue(max_pending=3, first_delay=0.001, max_delay=0.005)
        writes = [Flaky(10**9) for _ in range(5)]
        for write in writes:
            queue.add(write)
        assert queue.pending == 3 and queue.lost == {"budget": 2}  # the two oldest went
        await asyncio.sleep(0.02)
        started = time.monotonic()
        await queue.drain(0.1)
        assert time.monotonic() - started < 2 and queue.pending == 0
        assert queue.lost == {"budget": 5} and writes[-1].attempts > 1

    asyncio.run(scenario())


def test_settlements_survive_a_stalled_redis(own_redis: RedisServer) -> None:
    """20 calls in flight when Redis stalls (SIGSTOP) for 2 s: their settles time out (and their
    commands queue up in Redis, to run when it resumes), are retried until they land, and count once:
    the spend is exactly the calls' cost, nothing stays reserved, no concurrency slot stays taken."""
    state = redis_config(own_redis, timeout_ms=200, fail_fast_ms=100)
    budget = Budget(TEAM, 100 * USD, "day")
    rules = [LimitRule(TEAM, concurrent=21)]

    async def scenario() -> None:
        store = open_store(state)
        retries = RetryQueue()
        engine, limiter = BudgetEngine(store, retries=retries), RateLimiter(store, retries=retries)
        held = [(await engine.reserve([budget], USD), await limiter.admit(rules, 0)) for _ in range(21)]
        first_reservation, first_admission = held.pop()  # loads the scripts: what the stall holds up can run
        await first_reservation.settle(0)
        await first_admission.settle(0)

        async def end(i: int) -> None:  # the calls end one after another during the stall
            await asyncio.sleep(i * 0.02)
            reservation, admission = held[i]
            await reservation.settle((i + 1) * 1000)
            await admission.settle(0)

        own_redis.pause()
        try:
            await asyncio.gather(*(end(i) for i in range(20)))
            assert retries.pending > 0
            await asyncio.sleep(1)
        finally:
            own_redis.resume()
        deadline = time.monotonic() + 15
        while retries.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        status = await engine.status(budget)
        assert (status.spent, status.reserved) == (sum((i + 1) * 1000 for i in range(20)), 0)
        assert retries.lost == {} and retries.landed.get("budget", 0) > 0
        await asyncio.gather(*(limiter.admit(rules, 0) for _ in range(21)))  # every slot was freed
        with pytest.raises(RateLimited):
            await limiter.admit(rules, 0)
        await store.aclose()

    asyncio.run(scenario())


def test_a_reservation_whose_reply_was_lost_is_cancelled(own_redis: RedisServer) -> None:
    """A reserve sent into a stall times out (the caller is refused, 503), yet runs when Redis resumes:
    the queued cancel makes sure it holds nothing, whichever of the two Redis runs first."""
    state = redis_config(own_redis, timeout_ms=200, fail_fast_ms=100)
    budget = Budget(TEAM, 100 * USD, "day")

    async def scenario() -> None:
        store = open_store(state)
        engine = BudgetEngine(store, clock=FakeClock(time.time()))
        await (await engine.reserve([budget], USD)).release()  # connected, scripts loaded
        own_redis.pause()
        try:
            with pytest.raises(StoreUnavailable) as lost:
                await engine.reserve([budget], 5 * USD)
            assert lost.value.maybe_applied and engine.retries.pending == 1
            await asyncio.sleep(0.5)
        finally:
            own_redis.resume()
        deadline = time.monotonic() + 15
        while engine.retries.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert engine.retries.landed == {"cancel": 1}
        status = await engine.status(budget)
        assert (status.spent, status.reserved) == (0, 0)
        await store.aclose()

    asyncio.run(scenario())
