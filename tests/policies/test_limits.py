"""Rate limits: requests, tokens (reserved, then corrected) and calls in flight, on memory and Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from policies.config import KeyPolicies, StateConfig, TeamPolicies
from policies.limits import Admission, LimitRule, RateLimited, RateLimiter, format_duration, limit_rules
from policies.limits.engine import fits_in
from policies.state import Lease, Scope, StateStore, open_store, weighted
from policies.state.base import Entry, Exit, Verdict
from tests.policies.conftest import FakeClock, redis_config
from tests.policies.test_budgets import run_with
from tests.redis_server import RedisServer

TEAM = Scope.of_team("research")
KEY = Scope("research", "key", "crawler")
HOUR = 3600  # a long window, so no test straddles a window edge by chance
START = 500_000 * HOUR + 10  # unix seconds, 10 s into a window of any length that divides an hour
MINUTE = 60


def run(state: StateConfig, scenario: Callable[[StateStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = open_store(state)
        try:
            await scenario(store)
        finally:
            await store.aclose()

    asyncio.run(main())


async def refused(limiter: RateLimiter, rules: list[LimitRule], tokens: int = 0) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        await limiter.admit(rules, tokens)
    return caught.value


def test_requests_trip_and_reset(state: StateConfig) -> None:
    rules = [LimitRule(KEY, rpm=3)]

    async def scenario(store: StateStore) -> None:
        limiter = RateLimiter(store, window_seconds=1)
        for _ in range(3):
            await limiter.admit(rules, 0)
        error = await refused(limiter, rules)
        assert (error.scope, error.limit, error.value, error.never_fits) == (KEY, "requests", 3, False)
        assert 0 < error.retry_after <= 2
        assert error.headers is not None and error.headers.remaining_requests == 0
        started = time.monotonic()
        while True:  # the sliding window frees room within two windows
            try:
                await limiter.admit(rules, 0)
                break
            except RateLimited:
                assert time.monotonic() - started < 2.5
                await asyncio.sleep(0.05)

    run(state, scenario)


def test_key_limits_apply_on_top_of_the_team_and_a_refusal_uses_up_nothing(state: StateConfig) -> None:
    team = TeamPolicies.model_validate({"limits": {"rpm": 10}})
    key = KeyPolicies.model_validate({"limits": {"rpm": 2}})
    crawler = list(limit_rules(team="research", team_policies=team, key="crawler", key_policies=key))
    other = list(limit_rules(team="research", team_policies=team, key="other", key_policies=None))

    async def scenario(store: StateStore) -> None:
        limiter = RateLimiter(store, window_seconds=HOUR, clock=FakeClock(START))
        first = await limiter.admit(crawler, 0)
        assert first.headers is not None  # the key's limit is the tightest
        assert (first.headers.limit_requests, first.headers.remaining_requests) == (2, 1)
        await limiter.admit(crawler, 0)
        for _ in range(3):
            assert (await refused(limiter, crawler)).scope == KEY
        admitted = await limiter.admit(other, 0)
        assert admitted.headers is not None  # the team counted 3 calls, not the 3 refused ones
        assert (admitted.headers.limit_requests, admitted.headers.remaining_requests) == (10, 7)

    run(state, scenario)


def test_tokens_are_reserved_then_corrected(state: StateConfig) -> None:
    rules = [LimitRule(TEAM, tpm=1000)]

    async def scenario(store: StateStore) -> None:
        limiter = RateLimiter(store, window_seconds=HOUR, clock=FakeClock(START))
        first = await limiter.admit(rules, 600)
        assert first.headers is not None and first.headers.remaining_tokens == 400
        assert (await refused(limiter, rules, 500)).limit == "tokens"  # 600 + 500 > 1000
        await first.settle(100)  # used less: 500 given back
        second = await limiter.admit(rules, 500)
        assert second.headers is not None and second.headers.remaining_tokens == 400
        await second.settle(800)  # used more: the extra 300 counts
        third = await limiter.admit(rules, 50)
        assert third.headers is not None and third.headers.remaining_tokens == 50
        await third.settle(500)  # more than is left: the window fills up, no further
        error = await refused(limiter, rules, 1)
        assert error.headers is not None and error.headers.remaining_tokens == 0

    run(state, scenario)


def test_a_call_larger_than_the_limit_never_fits(state: StateConfig) -> None:
    async def scenario(store: StateStore) -> None:
        error = await refused(RateLimiter(store), [LimitRule(TEAM, tpm=1000)], 5000)
        assert error.never_fits and error.retry_after == 60 and "too large" in str(error)

    run(state, scenario)


def test_concurrent_calls_hold_leases(state: StateConfig) -> None:
    clock = FakeClock(2_000_000_000)
    rules = [LimitRule(TEAM, concurrent=5), LimitRule(KEY, rpm=100, concurrent=2)]

    async def scenario(store: StateStore) -> None:
        limiter = RateLimiter(store, lease_seconds=30, clock=clock)
        first, second = await limiter.admit(rules, 0), await limiter.admit(rules, 0)
        error = await refused(limiter, rules)
        assert (error.limit, error.scope, error.value) == ("concurrent", KEY, 2)
        await first.release()
        await first.settle(0)  # idempotent
        third = await limiter.admit(rules, 0)
        await refused(limiter, rules)
        clock.advance(31)  # `second` and `third` were leaked by a dead replica: their leases lapse
        fourth = await limiter.admit(rules, 0)
        await limiter.admit(rules, 0)
        for admission in (second, third, fourth):
            await admission.settle(0)
        await limiter.admit(rules, 0)  # the refused admissions took no team lease either

    run(state, scenario)


def test_a_refused_concurrent_admission_gives_back_its_hits(state: StateConfig) -> None:
    rules = [LimitRule(TEAM, rpm=100, tpm=10_000, concurrent=1)]

    async def scenario(store: StateStore) -> None:
        limiter = RateLimiter(store, window_seconds=HOUR, clock=FakeClock(START))
        held = await limiter.admit(rules, 1000)
        for _ in range(3):
            await refused(limiter, rules, 1000)
        await held.settle(1000)
        after = await limiter.admit(rules, 1000)
        assert after.headers is not None
        assert (after.headers.remaining_requests, after.headers.remaining_tokens) == (98, 8000)

    run(state, scenario)


def test_per_model_limits_and_headers() -> None:
    team = TeamPolicies.model_validate(
        {"limits": {"rpm": 100, "per_model": {"big": {"tpm": 50}}}, "agent_limits": {"rpm": 4}}
    )
    rules = limit_rules(team="research", team_policies=team, agent="a1", model="big")
    assert [r.scope for r in rules] == [
        TEAM,
        Scope("research", "team", "research", "big"),
        Scope("research", "agent", "a1"),
    ]
    assert limit_rules(team="research", team_policies=team, model="small") == (LimitRule(TEAM, rpm=100),)

    async def scenario(store: StateStore) -> None:
        admission = await RateLimiter(store, window_seconds=HOUR, clock=FakeClock(START)).admit(rules, 20)
        assert admission.headers is not None
        assert admission.headers.as_dict() == {
            "x-ratelimit-limit-requests": "4",
            "x-ratelimit-remaining-requests": "3",
            "x-ratelimit-reset-requests": admission.headers.as_dict()["x-ratelimit-reset-requests"],
            "x-ratelimit-limit-tokens": "50",
            "x-ratelimit-remaining-tokens": "30",
            "x-ratelimit-reset-tokens": admission.headers.as_dict()["x-ratelimit-reset-tokens"],
        }

    run(StateConfig(), scenario)


def test_no_rules_admit_without_touching_the_store() -> None:
    async def scenario(store: StateStore) -> None:
        admission = await RateLimiter(store).admit([], 10)
        assert admission.headers is None
        await admission.settle(5)
        await Admission.unlimited().release()

    run(StateConfig(), scenario)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.02, "20ms"), (1, "1s"), (1.5, "1.5s"), (360, "6m0s"), (3725, "1h2m5s")]
)
def test_reset_durations_read_like_openai(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_two_replicas_share_one_limit(redis_server: RedisServer) -> None:
    state = redis_config(redis_server)
    rules = (LimitRule(KEY, rpm=10, concurrent=4),)

    async def scenario() -> None:
        stores = [open_store(state), open_store(state)]
        limiters = [RateLimiter(store, window_seconds=HOUR, clock=FakeClock(START)) for store in stores]

        async def attempt(n: int) -> Admission | None:
            try:
                return await limiters[n % 2].admit(rules, 0)
            except RateLimited:
                return None

        admitted = [a for a in await asyncio.gather(*(attempt(n) for n in range(40))) if a is not None]
        assert len(admitted) == 4  # the concurrency limit binds first, across both replicas
        for admission in admitted:
            await admission.settle(0)
        for n in range(20):
            admission = await attempt(n)
            if admission is not None:
                admitted.append(admission)
                await admission.settle(0)
        assert len(admitted) == 10  # one rpm budget between the two
        for store in stores:
            await store.aclose()

    asyncio.run(scenario())


def test_the_previous_window_weighs_in_as_the_sliding_window_leaves_it(state: StateConfig) -> None:
    clock = FakeClock(START)
    rules = [LimitRule(KEY, rpm=10)]

    async def scenario(store: StateStore) -> None:
        limiter = RateLimiter(store, clock=clock)
        for _ in range(10):
            await limiter.admit(rules, 0)
        assert (await refused(limiter, rules)).retry_after == pytest.approx(MINUTE - 10, abs=0.01)
        clock.advance(MINUTE - 10)  # the start of the next window: all 10 still count
        error = await refused(limiter, rules)
        assert error.headers is not None and error.headers.remaining_requests == 0
        clock.advance(error.retry_after)
        admitted = await limiter.admit(rules, 0)
        assert admitted.headers is not None and admitted.headers.remaining_requests == 0
        clock.advance(MINUTE / 2)  # half of the previous window is still inside: 10 * 0.5 + 1 used
        admitted = await limiter.admit(rules, 0)
        assert admitted.headers is not None and admitted.headers.remaining_requests <= 4
        clock.advance(2 * MINUTE)  # both windows gone
        admitted = await limiter.admit(rules, 0)
        assert admitted.headers is not None and admitted.headers.remaining_requests == 9

    run(state, scenario)


def test_a_give_back_comes_off_the_window_that_holds_the_estimate(state: StateConfig) -> None:
    clock = FakeClock(START)
    rules = [LimitRule(TEAM, tpm=1000)]

    async def scenario(store: StateStore) -> None:
        limiter = RateLimiter(store, clock=clock)
        held = await limiter.admit(rules, 800)
        clock.advance(MINUTE)  # the estimate is in the previous window now, nearly all of it counted
        assert (await refused(limiter, rules, 500)).limit == "tokens"
        await held.settle(100)  # 700 come off the previous window
        after = await limiter.admit(rules, 500)
        assert after.headers is not None and 400 <= after.headers.remaining_tokens <= 500  # type: ignore[operator]
        clock.advance(2 * MINUTE)
        await after.settle(0)  # the estimate has left the sliding window: nothing to give back
        fresh = await limiter.admit(rules, 1000)
        assert fresh.headers is not None and fresh.headers.remaining_tokens == 0

    run(state, scenario)


@pytest.mark.parametrize(
    ("previous", "current", "amount", "elapsed_ms"),
    [(10, 0, 1, 0), (10, 2, 1, 5_000), (6, 4, 2, 1_000), (0, 10, 1, 20_000), (3, 9, 5, 30_000), (0, 10, 10, 0)],
)
def test_retry_after_is_exactly_when_the_call_fits(previous: int, current: int, amount: int, elapsed_ms: int) -> None:
    limit, window_ms = 10, 60_000
    now = 1_000 * window_ms + elapsed_ms

    def fits(at_ms: int) -> bool:
        index, elapsed = divmod(at_ms, window_ms)
        prev, cur = (previous, current) if index == 1_000 else (current, 0) if index == 1_001 else (0, 0)
        return weighted(prev, cur, elapsed, window_ms) + amount <= limit

    assert not fits(now)
    wait_ms = round(fits_in(previous, current, amount, limit, now, window_ms) * 1000)
    assert fits(now + wait_ms) and not fits(now + wait_ms - 1)


def test_a_replica_whose_clock_is_behind_never_resets_a_window(state: StateConfig) -> None:
    ahead, behind = FakeClock(START + MINUTE - 10.002), FakeClock(START + MINUTE - 10.010)
    rules = [LimitRule(KEY, rpm=4)]

    async def scenario(store: StateStore) -> None:
        fast, slow = RateLimiter(store, clock=ahead), RateLimiter(store, clock=behind)
        for _ in range(2):
            await slow.admit(rules, 0)  # the last milliseconds of a window, by the slow clock
        ahead.advance(0.004)  # the fast clock is in the next window already: the 2 weigh in as 1
        for _ in range(3):
            await fast.admit(rules, 0)
        await refused(slow, rules)  # 10 ms behind, but the window it would go back to is gone
        await refused(fast, rules)

    run(state, scenario)


def test_a_cancelled_admission_uses_up_nothing(state: StateConfig) -> None:
    """A call a budget refuses after its limits counted it: cancel() takes the whole hit back."""
    rules = [LimitRule(TEAM, rpm=2, tpm=10_000, concurrent=1)]

    async def scenario(store: StateStore) -> None:
        limiter = RateLimiter(store, window_seconds=HOUR, clock=FakeClock(START))
        for _ in range(5):
            await (await limiter.admit(rules, 1000)).cancel()
        admitted = await limiter.admit(rules, 1000)
        assert admitted.headers is not None
        assert (admitted.headers.remaining_requests, admitted.headers.remaining_tokens) == (1, 9000)
        await admitted.cancel()
        await admitted.settle(5000)  # no-op: the first of settle, release, cancel wins

    run(state, scenario)


def test_one_admission_may_take_several_leases(state: StateConfig) -> None:
    """A slice of calls (`Entry.lease_count`) takes one lease per call, and gives them all back."""
    lease = Lease("{t}:team:t:c", 5)

    async def scenario(store: StateStore) -> None:
        now = int(time.time() * 1000)

        async def admit(member: str, count: int) -> Verdict:
            entry = Entry(leases=[lease], lease_member=member, lease_count=count)
            return await store.admit(entry, now, HOUR, now + HOUR)

        assert (await admit("slice", 3)).admitted
        assert (await admit("two", 3)).full == 0
        assert (await admit("two", 2)).admitted
        exit = Exit(lease_keys=[lease.key], lease_member="slice", lease_count=3)
        assert await store.renew(exit, now + HOUR + 1)
        await store.finish(exit, now, HOUR)
        assert not await store.renew(exit, now + HOUR + 2)  # all three are gone
        assert (await admit("more", 3)).admitted

    run_with(state, scenario)
