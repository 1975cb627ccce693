"""Each strategy's order, reproducible under a seed."""

from __future__ import annotations

from collections import Counter

import pytest

from routing import RequestFeatures, Router
from tests.routing.support import FakeClock, make_router

ROUTES = """
ordered:  {candidates: [strong, cheap, mid]}
ab:       {strategy: weighted, weights: {cheap: 70, mid: 20, strong: 10}}
canary:   {strategy: weighted, weights: {cheap: 0, mid: 1}}
sticky:   {strategy: weighted, weights: {cheap: 50, mid: 30, strong: 20}, sticky: true}
auto:     {strategy: cheapest_above_quality, min_quality: 0.75, candidates: [premium, strong, mid, cheap]}
lenient:  {strategy: cheapest_above_quality, min_quality: 0.85, candidates: [strong, mid, cheap],
           below_quality_fallback: true}
capped:   {strategy: best_quality_under_cost, max_cost_usd: 0.02, candidates: [cheap, mid, strong, premium]}
fast:     {strategy: lowest_latency, candidates: [cheap, mid, strong], epsilon: 0, probe_after_s: null}
"""


def chat(model: str, **facts: object) -> RequestFeatures:
    return RequestFeatures(requested_model=model, **facts)  # type: ignore[arg-type]


def order(router: Router, features: RequestFeatures) -> list[str]:
    plan = router.plan(features)
    assert plan is not None
    return [t.model for t in plan.targets]


@pytest.mark.parametrize("route", ["ordered", "ab", "sticky", "auto", "capped", "fast"])
def test_every_strategy_is_reproducible_under_a_seed(route: str) -> None:
    runs = []
    for _ in range(2):
        router = make_router(ROUTES, seed=42)
        runs.append([order(router, chat(route, est_prompt_tokens=n, session=f"s{n}")) for n in range(200)])
    assert runs[0] == runs[1]


def test_fallback_keeps_the_config_order() -> None:
    plan = make_router(ROUTES).plan(chat("ordered"))
    assert plan is not None
    assert [t.model for t in plan.targets] == ["strong", "cheap", "mid"]
    assert (plan.route, plan.strategy, plan.requested) == ("ordered", "fallback", "ordered")
    assert plan.fallback_on == frozenset({"429", "5xx", "timeout", "connect"})


def test_weighted_split_is_within_tolerance_over_10000_plans() -> None:
    router = make_router(ROUTES, seed=1)
    firsts = Counter(order(router, chat("ab"))[0] for _ in range(10_000))
    assert abs(firsts["cheap"] / 10_000 - 0.70) < 0.02
    assert abs(firsts["mid"] / 10_000 - 0.20) < 0.02
    assert abs(firsts["strong"] / 10_000 - 0.10) < 0.02


def test_weighted_fallback_order_holds_every_candidate_once() -> None:
    router = make_router(ROUTES, seed=3)
    for _ in range(100):
        assert sorted(order(router, chat("ab"))) == ["cheap", "mid", "strong"]


def test_a_zero_weight_is_a_fallback_only() -> None:
    router = make_router(ROUTES)
    assert {tuple(order(router, chat("canary"))) for _ in range(500)} == {("mid", "cheap")}


def test_sticky_sessions_keep_one_model_and_split_by_weight() -> None:
    router = make_router(ROUTES, seed=5)
    for session in ("alpha", "beta", "gamma"):
        assert len({tuple(order(router, chat("sticky", session=session))) for _ in range(50)}) == 1
    # another router (another process, another seed) puts a session on the same model
    other = make_router(ROUTES, seed=999)
    assert order(other, chat("sticky", session="alpha")) == order(router, chat("sticky", session="alpha"))
    firsts = Counter(order(router, chat("sticky", session=f"user-{i}"))[0] for i in range(10_000))
    assert abs(firsts["cheap"] / 10_000 - 0.5) < 0.03
    assert abs(firsts["mid"] / 10_000 - 0.3) < 0.03


def test_a_sticky_session_moves_only_while_its_model_is_down() -> None:
    clock = FakeClock()
    router = make_router(ROUTES, clock=clock, routing="breaker: {failure_threshold: 1, cooldown_s: 10}")
    sessions = [f"s{i}" for i in range(300)]
    before = {s: order(router, chat("sticky", session=s)) for s in sessions}
    down = router.catalog.target("cheap")
    assert down is not None
    router.health.record_failure(down, "5xx")
    during = {s: order(router, chat("sticky", session=s)) for s in sessions}
    for s in sessions:
        if before[s][0] == "cheap":
            assert during[s] == before[s][1:]  # the session's own fallback order, minus the down model
        else:
            assert during[s][0] == before[s][0]  # sessions elsewhere do not move
    clock.advance(11)
    router.health.record_success(down, 0.1)
    assert {s: order(router, chat("sticky", session=s)) for s in sessions} == before


def test_sticky_without_a_session_draws_at_random() -> None:
    router = make_router(ROUTES, seed=2)
    assert len({order(router, chat("sticky"))[0] for _ in range(200)}) == 3


def test_cheapest_above_quality_costs_this_request() -> None:
    router = make_router(ROUTES)
    plan = router.plan(chat("auto", est_prompt_tokens=2000, max_tokens=500))
    assert plan is not None
    # mid: 2000*1 + 500*4 = $0.004; strong: 2000*3 + 500*15 = $0.0135; premium $0.035; cheap is under 0.75
    assert [t.model for t in plan.targets] == ["mid", "strong", "premium"]
    assert dict(plan.considered)["cheap"] == "below_min_quality: quality 0.6 < 0.75"


def test_cheapest_depends_on_the_prompt_and_output_sizes() -> None:
    models = """
    reader: {provider: p, input_per_mtok: 0.5, output_per_mtok: 20, quality: 0.9}
    writer: {provider: p, input_per_mtok: 5, output_per_mtok: 2, quality: 0.9}
    """
    router = make_router(
        "r: {strategy: cheapest_above_quality, min_quality: 0.5, candidates: [reader, writer]}", models=models
    )
    assert order(router, chat("r", est_prompt_tokens=50_000, max_tokens=100)) == ["reader", "writer"]
    assert order(router, chat("r", est_prompt_tokens=100, max_tokens=4000)) == ["writer", "reader"]
    # without max_tokens the routing default (1024 output tokens) is assumed
    router = make_router(
        "r: {strategy: cheapest_above_quality, min_quality: 0.5, candidates: [reader, writer]}",
        "default_output_tokens: 10",
        models=models,
    )
    assert order(router, chat("r", est_prompt_tokens=1000)) == ["reader", "writer"]


def test_cheapest_can_fall_back_below_the_quality_floor_when_asked() -> None:
    router = make_router(ROUTES)
    assert order(router, chat("lenient", est_prompt_tokens=100)) == ["strong", "cheap", "mid"]


def test_best_quality_under_cost() -> None:
    router = make_router(ROUTES)
    plan = router.plan(chat("capped", est_prompt_tokens=1000, max_tokens=1000))
    assert plan is not None
    # cheap $0.0005 (q .6), mid $0.005 (q .8), strong $0.018 (q .9), premium $0.04 (q .95, over the cap)
    assert [t.model for t in plan.targets] == ["strong", "mid", "cheap"]
    assert dict(plan.considered)["premium"] == "over_max_cost: estimated $0.040000 > $0.02"
    assert order(router, chat("capped", est_prompt_tokens=1000, max_tokens=4000)) == ["mid", "cheap"]


def test_best_quality_ties_go_to_the_cheaper() -> None:
    router = make_router("r: {strategy: best_quality_under_cost, max_cost_usd: 1, candidates: [mid, novision]}")
    assert order(router, chat("r", est_prompt_tokens=100)) == ["novision", "mid"]


def record(router: Router, model: str, latency: float, *, ttft: float | None = None) -> None:
    target = router.catalog.target(model)
    assert target is not None
    router.health.record_success(target, latency, ttft)


def test_lowest_latency_orders_by_ewma_and_measures_the_unmeasured_first() -> None:
    router = make_router(ROUTES)
    record(router, "cheap", 0.9)
    record(router, "mid", 0.3)
    assert order(router, chat("fast")) == ["strong", "mid", "cheap"]  # strong has never been measured
    record(router, "strong", 0.5)
    assert order(router, chat("fast")) == ["mid", "strong", "cheap"]
    for _ in range(5):
        record(router, "mid", 2.0)
    assert order(router, chat("fast")) == ["strong", "cheap", "mid"]


def test_lowest_latency_uses_time_to_first_token_for_streams() -> None:
    router = make_router(ROUTES)
    record(router, "cheap", 3.0, ttft=0.1)
    record(router, "mid", 1.0, ttft=0.5)
    record(router, "strong", 2.0, ttft=0.3)
    assert order(router, chat("fast")) == ["mid", "strong", "cheap"]
    assert order(router, chat("fast", stream=True)) == ["cheap", "strong", "mid"]


def test_lowest_latency_puts_a_failing_candidate_last() -> None:
    router = make_router(ROUTES)
    for model, latency in (("cheap", 0.1), ("mid", 0.2), ("strong", 0.3)):
        record(router, model, latency)
    target = router.catalog.target("cheap")
    assert target is not None
    router.health.record_failure(target, "timeout")
    assert order(router, chat("fast")) == ["mid", "strong", "cheap"]


def simulate(router: Router, truth: dict[str, float], calls: int, clock: FakeClock) -> Counter[str]:
    """Send `calls` calls, each observed at the true latency of the model that was chosen."""
    chosen: Counter[str] = Counter()
    for _ in range(calls):
        plan = router.plan(chat("fast"))
        assert plan is not None
        first = plan.targets[0]
        chosen[first.model] += 1
        router.health.record_success(first, truth[first.model])
        clock.advance(1.0)
    return chosen


def test_periodic_probing_notices_a_model_that_recovered() -> None:
    clock = FakeClock()
    routes = "fast: {strategy: lowest_latency, candidates: [cheap, mid], epsilon: 0, probe_after_s: 30}"
    router = make_router(routes, clock=clock)
    truth = {"cheap": 0.2, "mid": 3.0}
    assert simulate(router, truth, 10, clock)["mid"] == 1  # measured once, then avoided
    truth["mid"] = 0.05  # it recovers
    chosen = simulate(router, truth, 100, clock)
    # a probe 30 s after it was last seen, another 30 s later (its stale average gives way), then it wins
    assert chosen["mid"] >= 30
    assert simulate(router, truth, 60, clock)["cheap"] == 2  # now cheap is the one probed every 30 s


def test_epsilon_greedy_notices_a_model_that_recovered() -> None:
    clock = FakeClock()
    routes = "fast: {strategy: lowest_latency, candidates: [cheap, mid], epsilon: 0.1, probe_after_s: null}"
    router = make_router(routes, clock=clock, seed=11)
    truth = {"cheap": 0.2, "mid": 3.0}
    warm = simulate(router, truth, 1000, clock)
    assert 70 < warm["mid"] < 130  # about epsilon of the calls explore the other candidate
    truth["mid"] = 0.05
    simulate(router, truth, 200, clock)
    assert simulate(router, truth, 200, clock)["mid"] > 160  # it wins; cheap now gets the explorations
