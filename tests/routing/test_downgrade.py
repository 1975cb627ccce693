"""A caller close to its budget cap is sent to the route's cheaper candidates."""

from __future__ import annotations

from routing import RequestFeatures
from tests.routing.support import make_router

ROUTES = """
smart:
  strategy: cheapest_above_quality
  min_quality: 0.85
  candidates: [strong, premium]
  downgrade: {when_remaining_usd_below: 5, candidates: [cheap, mid]}
ratio:
  candidates: [premium]
  downgrade: {when_remaining_fraction_below: 0.1, candidates: [mid]}
"""


def targets(**facts: object) -> tuple[str, bool, list[str]]:
    plan = make_router(ROUTES).plan(RequestFeatures(**facts))  # type: ignore[arg-type]
    assert plan is not None
    return plan.strategy, plan.downgraded, [t.model for t in plan.targets]


def test_plenty_of_budget_or_unknown_keeps_the_route() -> None:
    assert targets(requested_model="smart", budget_remaining_usd=50.0) == (
        "cheapest_above_quality",
        False,
        ["strong", "premium"],
    )
    assert targets(requested_model="smart")[1] is False
    assert targets(requested_model="ratio", budget_remaining_usd=0.01)[1] is False  # the route looks at the fraction


def test_below_the_usd_threshold_the_cheaper_candidates_are_used_in_order() -> None:
    assert targets(requested_model="smart", budget_remaining_usd=4.99) == ("downgrade", True, ["cheap", "mid"])


def test_below_the_fraction_threshold() -> None:
    assert targets(requested_model="ratio", budget_fraction_remaining=0.05) == ("downgrade", True, ["mid"])
    assert targets(requested_model="ratio", budget_fraction_remaining=0.5)[1] is False


def test_the_replaced_candidates_say_why() -> None:
    plan = make_router(ROUTES).plan(RequestFeatures(requested_model="smart", budget_remaining_usd=1.0))
    assert plan is not None
    reasons = dict(plan.considered)
    assert reasons["cheap"] is None and reasons["mid"] is None
    assert (reasons["strong"] or "").startswith("downgraded:")


def test_downgrade_candidates_are_still_checked() -> None:
    plan = make_router(ROUTES).plan(
        RequestFeatures(requested_model="smart", budget_remaining_usd=1.0, est_prompt_tokens=20_000)
    )
    assert plan is not None
    assert [t.model for t in plan.targets] == ["mid"]
    assert (dict(plan.considered)["cheap"] or "").startswith("context_window:")


def test_a_key_granted_the_route_may_use_its_downgrade_candidates() -> None:
    router = make_router(ROUTES)
    allowed = router.allowed_models(["smart"])
    plan = router.plan(RequestFeatures(requested_model="smart", budget_remaining_usd=1.0, allowed_models=allowed))
    assert plan is not None
    assert [t.model for t in plan.targets] == ["cheap", "mid"]


def test_the_router_says_which_calls_need_the_remaining_budget() -> None:
    plain = make_router(ROUTES)
    assert plain.may_downgrade("smart") and plain.may_downgrade("ratio")
    assert not plain.may_downgrade("mid") and not plain.may_downgrade("nope")
    # A rule may send any call to a route that downgrades: then every call needs the budget looked up.
    rerouted = make_router(ROUTES, "rules: [{match: {headers: {x-tier: batch}}, route: smart}]")
    assert rerouted.may_downgrade("mid")
    plan = rerouted.plan(RequestFeatures(requested_model="mid", headers={"x-tier": "batch"}, budget_remaining_usd=1.0))
    assert plan is not None and plan.downgraded and [t.model for t in plan.targets] == ["cheap", "mid"]
