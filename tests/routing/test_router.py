"""The router as the gateway uses it: names, grants, fallbacks, retry policies, reloads."""

from __future__ import annotations

from routing import HealthTracker, RequestFeatures
from tests.routing.support import MODELS, FakeClock, make_router

ROUTES = """
auto:  {candidates: [mid, strong], retry: {max_attempts: 2, deadline_s: 5}}
embed: {candidates: [embed]}
"""
WITH_FALLBACKS = (
    MODELS
    + """
chain: {provider: p9, quality: 0.5, fallbacks: [cheap, mid]}
"""
)


def test_unknown_names_plan_to_none() -> None:
    assert make_router(ROUTES).plan(RequestFeatures(requested_model="gpt-9")) is None


def test_a_model_asked_for_by_name_is_a_single_plan_with_its_fallbacks() -> None:
    router = make_router(ROUTES, models=WITH_FALLBACKS)
    plan = router.plan(RequestFeatures(requested_model="chain"))
    assert plan is not None
    assert (plan.route, plan.strategy, [t.model for t in plan.targets]) == (None, "single", ["chain", "cheap", "mid"])
    strong = router.plan(RequestFeatures(requested_model="strong"))
    assert strong is not None
    target = strong.targets[0]
    assert (target.model, target.provider, target.upstream_model) == ("strong", "p3", "strong-2025")


def test_grants_reach_routes_members_and_models_fallbacks() -> None:
    router = make_router(ROUTES, models=WITH_FALLBACKS)
    assert router.allowed_models(["*"]) is None
    assert router.allowed_models(["auto"]) == frozenset({"auto", "mid", "strong"})  # only routes: their members
    assert router.allowed_models(["chain", "ghost"]) == frozenset({"chain", "ghost"})  # models: exactly those
    assert router.allowed_models(["auto", "mid"]) == frozenset({"auto", "mid"})
    plan = router.plan(RequestFeatures(requested_model="chain", allowed_models=frozenset({"chain", "mid"})))
    assert plan is not None
    assert [t.model for t in plan.targets] == ["chain", "mid"]
    assert dict(plan.considered)["cheap"] == "not_allowed: the key may not use this model"


def test_a_key_naming_models_uses_a_route_only_through_them() -> None:
    router = make_router(ROUTES, models=WITH_FALLBACKS)
    allowed = router.allowed_models(["auto", "mid"])
    plan = router.plan(RequestFeatures(requested_model="auto", allowed_models=allowed))
    assert plan is not None
    assert [t.model for t in plan.targets] == ["mid"]
    assert dict(plan.considered)["strong"] == "not_allowed: the key may not use this model"


def test_routes_carry_their_retry_policy() -> None:
    clock = FakeClock()
    router = make_router(ROUTES, "retry: {max_attempts: 7}", clock=clock)
    auto = router.plan(RequestFeatures(requested_model="auto"))
    single = router.plan(RequestFeatures(requested_model="mid"))
    assert auto is not None and single is not None
    assert auto.retry.config.max_attempts == 2 and single.retry.config.max_attempts == 7
    attempts = auto.start()
    assert attempts.fallback_on == auto.fallback_on
    clock.advance(5)
    assert not attempts.can_start()


def test_health_survives_a_reload() -> None:
    clock = FakeClock()
    health = HealthTracker(clock=clock)
    old = make_router(ROUTES, "breaker: {failure_threshold: 1}", health=health, clock=clock)
    mid = old.catalog.target("mid")
    assert mid is not None
    health.record_failure(mid, "5xx")
    new = make_router(ROUTES, "breaker: {failure_threshold: 1, cooldown_s: 99}", health=health, clock=clock)
    plan = new.plan(RequestFeatures(requested_model="auto"))
    assert plan is not None
    assert [t.model for t in plan.targets] == ["strong"]
    assert dict(plan.considered)["mid"] == "circuit_open: open for 99.0 s more"


def test_describe_lists_every_name_with_its_targets_health() -> None:
    router = make_router("auto: {candidates: [mid], downgrade: {when_remaining_usd_below: 1, candidates: [cheap]}}")
    mid = router.catalog.target("mid")
    assert mid is not None
    router.health.record_success(mid, 0.5)
    described = {item["name"]: item for item in router.describe()}
    auto = described["auto"]
    assert (auto["type"], auto["strategy"], auto["downgrade"]) == ("route", "fallback", ["cheap"])
    [target] = auto["targets"]
    assert (target["model"], target["provider"], target["breaker"], target["latency_ewma_ms"]) == (
        "mid",
        "p2",
        "closed",
        500.0,
    )
    assert described["cheap"]["type"] == "model"


def test_the_static_catalog_still_answers_the_gateways_questions() -> None:
    router = make_router(ROUTES)
    names = dict(router.catalog.names())
    assert names["auto"] == "route" and names["mid"] == "model"
    static = router.catalog.plan("auto")
    assert static is not None
    assert [t.model for t in static.targets] == ["mid", "strong"]
    assert "auto" in router.catalog and "nope" not in router.catalog
