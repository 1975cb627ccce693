"""Budgets hold under concurrency, on memory and on Redis, with one or two store clients."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from policies.budgets import Budget, BudgetEngine, BudgetExceeded, Reservation, call_budgets
from policies.budgets.model import usd_text
from policies.config import KeyPolicies, StateConfig, TeamPolicies
from policies.state import MemoryStore, Scope, StateStore, open_store
from tests.policies.conftest import FakeClock, redis_config
from tests.redis_server import RedisServer

USD = 10**9
T0 = datetime(2031, 1, 31, 23, 0, tzinfo=UTC).timestamp()  # an hour before a month (and day) boundary
TEAM = Scope.of_team("research")


def run_with(state: StateConfig, scenario, stores: int = 1):  # type: ignore[no-untyped-def]
    """Run `scenario(*stores)` in a fresh loop with `stores` independent store clients on `state`."""

    async def main() -> object:
        opened = [open_store(state) for _ in range(stores)]
        if state.url == "memory":  # one process: every "replica" is the same memory
            opened = [opened[0]] * stores
        try:
            return await scenario(*opened)
        finally:
            for store in opened:
                await store.aclose()

    return asyncio.run(main())


async def try_reserve(engine: BudgetEngine, budgets: list[Budget], cost: int) -> Reservation | None:
    try:
        return await engine.reserve(budgets, cost)
    except BudgetExceeded:
        return None


def test_reserve_settle_and_status(state: StateConfig) -> None:
    async def scenario(store: StateStore) -> None:
        engine = BudgetEngine(store, clock=FakeClock(T0))
        budget = Budget(TEAM, 10 * USD, "month")
        held = await engine.reserve([budget], 3 * USD)
        status = await engine.status(budget)
        assert (status.spent, status.reserved, status.remaining) == (0, 3 * USD, 7 * USD)
        await held.settle(USD // 2)
        await held.settle(USD)  # a second settle changes nothing
        status = await engine.status(budget)
        assert (status.cap, status.spent, status.reserved, status.remaining) == (10 * USD, USD // 2, 0, 9_500_000_000)
        assert status.resets_at == datetime(2031, 2, 1, tzinfo=UTC)
        assert status.as_dict()["remaining_usd"] == 9.5

        released = await engine.reserve([budget], 9 * USD)
        await released.release()
        assert (await engine.status(budget)).reserved == 0

    run_with(state, scenario)


def test_a_call_that_does_not_fit_names_the_budget_and_holds_nothing(state: StateConfig) -> None:
    async def scenario(store: StateStore) -> None:
        engine = BudgetEngine(store, clock=FakeClock(T0))
        team = Budget(TEAM, 100 * USD, "month")
        key = Budget(Scope("research", "key", "crawler"), 5 * USD, "day")
        await (await engine.reserve([team, key], 4 * USD)).settle(4 * USD)
        with pytest.raises(BudgetExceeded) as refused:
            await engine.reserve([team, key], 2 * USD)
        error = refused.value
        assert (error.scope, error.period, error.cap, error.spent, error.requested) == (
            key.scope,
            "day",
            5 * USD,
            4 * USD,
            2 * USD,
        )
        assert "key crawler of team research" in str(error) and "daily" in str(error)
        assert (await engine.status(team)).reserved == 0  # all or nothing: the team budget holds nothing

    run_with(state, scenario)


@pytest.mark.parametrize("clients", [1, 2])
def test_200_concurrent_calls_against_a_cap_for_100(state: StateConfig, clients: int) -> None:
    cost = 7_000_000  # $0.007 worst case per call
    budget = Budget(TEAM, 100 * cost, "day")

    async def scenario(*stores: StateStore) -> None:
        engines = [BudgetEngine(store, clock=FakeClock(T0)) for store in stores]
        attempts = [try_reserve(engines[i % len(engines)], [budget], cost) for i in range(200)]
        held = [r for r in await asyncio.gather(*attempts) if r is not None]
        assert len(held) == 100
        status = await engines[0].status(budget)
        assert status.spent + status.reserved == budget.cap
        await asyncio.gather(*(r.settle(cost - i % 3) for i, r in enumerate(held)))  # real cost <= worst case
        status = await engines[-1].status(budget)
        assert status.reserved == 0 and status.spent <= budget.cap
        assert status.spent == sum(cost - i % 3 for i in range(100))

    run_with(state, scenario, stores=clients)


def test_period_rolls_over_at_the_calendar_boundary(state: StateConfig) -> None:
    clock = FakeClock(T0)

    async def scenario(store: StateStore) -> None:
        engine = BudgetEngine(store, clock=clock)
        budgets = [Budget(TEAM, 10 * USD, "month"), Budget(Scope("research", "agent", "a"), 10 * USD, "total")]
        await (await engine.reserve(budgets[:1], 10 * USD)).settle(10 * USD)
        with pytest.raises(BudgetExceeded):
            await engine.reserve(budgets[:1], 1)
        clock.advance(3600)  # 2031-02-01 00:00 UTC
        status = await engine.status(budgets[0])
        assert (status.spent, status.window_start) == (0, datetime(2031, 2, 1, tzinfo=UTC))
        assert status.resets_at == datetime(2031, 3, 1, tzinfo=UTC)
        await (await engine.reserve(budgets, 4 * USD)).settle(4 * USD)
        clock.advance(40 * 86400)  # March: the month resets, the total does not
        assert (await engine.status(budgets[0])).spent == 0
        total = await engine.status(budgets[1])
        assert (total.spent, total.resets_at) == (4 * USD, None)

    run_with(state, scenario)


def test_task_budget_caps_each_task_separately(state: StateConfig) -> None:
    team = TeamPolicies.model_validate(
        {"budget": {"usd": 100, "period": "month"}, "task_budget": {"usd": 2, "period": "total"}}
    )

    def budgets(task: str) -> tuple[Budget, ...]:
        return call_budgets(team="research", team_policies=team, task=task)

    async def scenario(store: StateStore) -> None:
        engine = BudgetEngine(store, clock=FakeClock(T0))
        for _ in range(2):
            await (await engine.reserve(budgets("t-1"), USD)).settle(USD)
        with pytest.raises(BudgetExceeded) as refused:
            await engine.reserve(budgets("t-1"), 1)
        assert refused.value.scope == Scope("research", "task", "t-1")
        await (await engine.reserve(budgets("t-2"), USD)).settle(USD)  # another task has its own cap
        assert (await engine.status(budgets("t-2")[1])).spent == USD
        assert (await engine.status(budgets("t-2")[0])).spent == 3 * USD  # the team pays for both

    run_with(state, scenario)


def test_same_state_named_twice_counts_once_against_the_smaller_cap(state: StateConfig) -> None:
    task = Scope("research", "task", "t-9")

    async def scenario(store: StateStore) -> None:
        engine = BudgetEngine(store, clock=FakeClock(T0))
        both = [Budget(task, 5 * USD, "total"), Budget(task, 3 * USD, "total")]
        await (await engine.reserve(both, 2 * USD)).settle(2 * USD)
        assert (await engine.status(both[0])).spent == 2 * USD  # not 4
        with pytest.raises(BudgetExceeded) as refused:
            await engine.reserve(both, 2 * USD)
        assert refused.value.cap == 3 * USD

    run_with(state, scenario)


def test_a_leaked_reservation_lapses_at_its_deadline(state: StateConfig) -> None:
    clock = FakeClock(T0)

    async def scenario(store: StateStore) -> None:
        engine = BudgetEngine(store, clock=clock, reservation_seconds=60)
        budget = Budget(TEAM, 10 * USD, "day")
        await engine.reserve([budget], 8 * USD)  # never settled: its process "died"
        with pytest.raises(BudgetExceeded):
            await engine.reserve([budget], 5 * USD)
        clock.advance(61)
        held = await engine.reserve([budget], 5 * USD)
        status = await engine.status(budget)
        assert (status.spent, status.reserved) == (0, 5 * USD)
        await held.settle(5 * USD)
        assert (await engine.status(budget)).reserved == 0

    run_with(state, scenario)


def test_thresholds_are_reported_once_across_replicas(redis_server: RedisServer) -> None:
    state = redis_config(redis_server)
    budget = Budget(TEAM, 100 * USD, "month", (0.5, 0.8))

    async def scenario(*stores: StateStore) -> None:
        engines = [BudgetEngine(store, clock=FakeClock(T0)) for store in stores]
        held = await asyncio.gather(*(engines[i % 2].reserve([budget], USD) for i in range(90)))
        crossings = [c for batch in await asyncio.gather(*(r.settle(USD) for r in held)) for c in batch]
        assert sorted(c.threshold for c in crossings) == [0.5, 0.8]
        for crossing in crossings:
            assert crossing.spent >= crossing.threshold * crossing.cap
            assert crossing.payload()["scope"] == {
                "team": "research",
                "kind": "team",
                "name": "research",
                "model": None,
            }
        late = await (await engines[0].reserve([budget], USD)).settle(USD)
        assert late == ()

    run_with(state, scenario, stores=2)


def test_each_threshold_fires_once_per_period(state: StateConfig) -> None:
    budget = Budget(TEAM, 10 * USD, "day", (0.8,))

    async def scenario(store: StateStore) -> None:
        engine = BudgetEngine(store, clock=FakeClock(T0))
        assert await (await engine.reserve([budget], 7 * USD)).settle(7 * USD) == ()
        (crossing,) = await (await engine.reserve([budget], USD)).settle(USD)
        assert (crossing.threshold, crossing.spent, crossing.cap) == (0.8, 8 * USD, 10 * USD)
        assert crossing.payload()["spent_usd"] == 8.0
        assert await (await engine.reserve([budget], USD)).settle(USD) == ()

    run_with(state, scenario)


def test_no_budgets_means_no_store_call() -> None:
    async def scenario() -> None:
        engine = BudgetEngine(open_store(StateConfig()))
        held = await engine.reserve([], USD)
        assert await held.settle(USD) == ()

    asyncio.run(scenario())


def test_redis_state_keys_expire_with_their_period(redis_server: RedisServer) -> None:
    state = redis_config(redis_server)
    clock = FakeClock(T0)

    async def scenario(store: StateStore) -> None:
        engine = BudgetEngine(store, clock=clock, task_idle_seconds=3600)
        day = Budget(TEAM, USD, "day")
        forever = Budget(Scope("research", "agent", "a"), USD, "total")
        task = Budget(Scope("research", "task", "t/{1}"), USD, "total")
        await (await engine.reserve([day, forever, task], 1)).settle(1)
        client = store.client  # type: ignore[attr-defined]
        prefix = f"{state.key_prefix}{{research}}"
        expected = {
            f"{prefix}:team:research:b:d20310131": int(datetime(2031, 2, 2, tzinfo=UTC).timestamp()),  # day after
            f"{prefix}:agent:a:b:total": -1,  # never
            f"{prefix}:task:t%2F%7B1%7D:b:total": int(T0) + 3600,  # idle tasks go; a header cannot re-slot a key
        }
        keys = {k.decode() for k in await client.keys(f"{state.key_prefix}*")}
        assert keys == set(expected)
        assert {k: await client.expiretime(k) for k in keys} == expected

    run_with(state, scenario)


def test_call_budgets_from_config() -> None:
    team = TeamPolicies.model_validate(
        {
            "budget": {"usd": 500, "period": "month"},
            "agent_budget": {"usd": 50, "period": "week", "alert_thresholds": [0.5]},
            "task_budget": {"usd": 2, "period": "total"},
        }
    )
    key = KeyPolicies.model_validate(
        {"budget": {"usd": 20, "period": "day"}, "task_budget": {"usd": 1, "period": "day"}}
    )
    budgets = call_budgets(
        team="research",
        team_policies=team,
        key="crawler",
        key_policies=key,
        agent="a1",
        task="t-1",
        default_thresholds=(0.8, 0.95),
    )
    assert [(b.scope.kind, b.scope.name, b.cap, b.period, b.alert_thresholds) for b in budgets] == [
        ("team", "research", 500 * USD, "month", (0.8, 0.95)),
        ("agent", "a1", 50 * USD, "week", (0.5,)),
        ("task", "t-1", 2 * USD, "total", (0.8, 0.95)),
        ("key", "crawler", 20 * USD, "day", (0.8, 0.95)),
        ("task", "t-1", 1 * USD, "day", (0.8, 0.95)),
    ]
    (only,) = call_budgets(team="research", team_policies=team)  # no agent, task or key: the team's alone
    assert (only.scope, only.alert_thresholds) == (budgets[0].scope, ())


def test_memory_forgets_idle_task_budgets_as_it_goes() -> None:
    clock = FakeClock(T0)

    async def scenario() -> None:
        store = MemoryStore()
        engine = BudgetEngine(store, clock=clock, task_idle_seconds=60)
        for n in range(2000):
            await (await engine.reserve([Budget(Scope("research", "task", f"t{n}"), USD, "total")], 1)).settle(1)
        clock.advance(61)
        team = [Budget(TEAM, 10**6 * USD, "month")]
        for _ in range(5000):
            await (await engine.reserve(team, 1)).settle(1)
        assert len(store._accounts) < 100  # the 2000 idle tasks are gone, a few per operation

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(0, "$0.00"), (10**9, "$1.00"), (5_000_000, "$0.005"), (9_800_000, "$0.0098"), (1, "$0.000000001"),
     (123_450_000_000, "$123.45"), (500_000_000_000, "$500.00")],
)  # fmt: skip
def test_usd_text_never_hides_a_sub_cent_amount(nanos: int, text: str) -> None:
    assert usd_text(nanos) == text
