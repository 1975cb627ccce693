"""Candidates that cannot serve a call are skipped, each with a reason; when none is left the
error says which kind of answer the client should get."""

from __future__ import annotations

import pytest

from routing import NoTarget, RequestFeatures, reason_code
from tests.routing.support import FakeClock, make_router

ROUTES = """
all:   {candidates: [cheap, mid, strong, premium, novision]}
embed: {candidates: [embed]}
"""


def considered(**facts: object) -> dict[str, str | None]:
    plan = make_router(ROUTES).plan(RequestFeatures(requested_model="all", **facts))  # type: ignore[arg-type]
    assert plan is not None
    return dict(plan.considered)


def test_a_plain_call_skips_nothing_and_lists_candidates_in_config_order() -> None:
    plan = make_router(ROUTES).plan(RequestFeatures(requested_model="all"))
    assert plan is not None
    assert plan.considered == tuple((m, None) for m in ("cheap", "mid", "strong", "premium", "novision"))
    assert plan.skipped() == ()


@pytest.mark.parametrize(
    ("facts", "model", "reason"),
    [
        ({"needs_tools": True}, "premium", "capability: the model does not support tools"),
        ({"needs_json_schema": True}, "novision", "capability: the model does not support response_format json_schema"),
        ({"needs_vision": True}, "novision", "capability: the model does not accept images"),
        ({"stream": True}, "novision", "capability: the model does not stream"),
        (
            {"est_prompt_tokens": 15_000, "max_tokens": 2000},
            "cheap",
            "context_window: 15000 prompt + 2000 max_tokens > 16000 tokens",
        ),
        ({"est_prompt_tokens": 17_000}, "cheap", "context_window: 17000 prompt + 0 max_tokens > 16000 tokens"),
        ({"max_tokens": 5000}, "cheap", "max_output_tokens: max_tokens 5000 > 4000"),
        (
            {"allowed_models": frozenset({"cheap", "mid", "strong", "novision"})},
            "premium",
            "not_allowed: the key may not use this model",
        ),
    ],
)
def test_each_reason(facts: dict[str, object], model: str, reason: str) -> None:
    reasons = considered(**facts)
    assert reasons[model] == reason
    assert [m for m, r in reasons.items() if r is not None] == [model]


def test_an_open_circuit_is_skipped() -> None:
    clock = FakeClock()
    router = make_router(ROUTES, "breaker: {failure_threshold: 2, cooldown_s: 30}", clock=clock)
    mid = router.catalog.target("mid")
    assert mid is not None
    for _ in range(2):
        router.health.record_failure(mid, "5xx")
    plan = router.plan(RequestFeatures(requested_model="all"))
    assert plan is not None
    assert dict(plan.considered)["mid"] == "circuit_open: open for 30.0 s more"
    assert "mid" not in [t.model for t in plan.targets]


def test_the_first_reason_wins() -> None:
    reasons = considered(needs_tools=True, allowed_models=frozenset({"cheap"}))
    assert reasons["premium"] == "not_allowed: the key may not use this model"


def no_target(routes: str, model: str, routing: str = "", clock: FakeClock | None = None, **facts: object) -> NoTarget:
    router = make_router(routes, routing, clock=clock)
    with pytest.raises(NoTarget) as caught:
        router.plan(RequestFeatures(requested_model=model, **facts))  # type: ignore[arg-type]
    return caught.value


def test_nothing_left_for_a_capability_is_400() -> None:
    error = no_target("r: {candidates: [premium]}", "r", needs_tools=True)
    assert (error.status, error.category, error.route, error.requested) == (400, "invalid", "r", "r")
    assert error.considered == (("premium", "capability: the model does not support tools"),)
    assert "premium: capability" in error.message


def test_nothing_left_for_permissions_is_403() -> None:
    error = no_target("r: {candidates: [cheap, mid]}", "r", allowed_models=frozenset({"strong"}))
    assert (error.status, error.category) == (403, "forbidden")


def test_open_circuits_are_503_with_the_time_until_a_probe() -> None:
    clock = FakeClock()
    routing = "breaker: {failure_threshold: 1, cooldown_s: 30}"
    router = make_router("r: {candidates: [cheap, mid]}", routing, clock=clock)
    for model, at in (("cheap", 0), ("mid", 10)):
        target = router.catalog.target(model)
        assert target is not None
        clock.advance(at)
        router.health.record_failure(target, "timeout")
    with pytest.raises(NoTarget) as caught:
        router.plan(RequestFeatures(requested_model="r", allowed_models=frozenset({"cheap"})))
    error = caught.value
    assert (error.status, error.category) == (503, "unavailable")  # the allowed one may come back
    assert error.retry_after_s == pytest.approx(20.0)


def test_the_wrong_operation_is_400() -> None:
    error = no_target(ROUTES, "embed")
    assert (error.status, error.considered) == (400, (("embed", "kind: serves embeddings, not chat"),))
    router = make_router(ROUTES)
    assert router.plan(RequestFeatures(requested_model="embed", operation="embeddings")) is not None


def test_quality_and_cost_filters_are_reasons_too() -> None:
    error = no_target("r: {strategy: cheapest_above_quality, min_quality: 0.99, candidates: [cheap, mid]}", "r")
    assert [reason_code(r or "") for _, r in error.considered] == ["below_min_quality", "below_min_quality"]
    assert error.status == 400
    error = no_target(
        "r: {strategy: best_quality_under_cost, max_cost_usd: 0.001, candidates: [strong]}", "r", max_tokens=1000
    )
    assert error.considered == (("strong", "over_max_cost: estimated $0.015000 > $0.001"),)


def test_a_max_tokens_beyond_any_bound_is_a_skip_reason_not_a_crash() -> None:
    """`novision` declares no context window: the fast test compares against an unbounded sentinel,
    and the reason must come from the same bound (it used to be an AssertionError, a 500)."""
    with pytest.raises(NoTarget) as info:
        make_router(ROUTES).plan(RequestFeatures(requested_model="all", max_tokens=2**62 + 1))
    reasons = dict(info.value.considered)
    assert set(reasons) == {"cheap", "mid", "strong", "premium", "novision"}
    assert all(reason is not None and reason.startswith("context_window:") for reason in reasons.values())
