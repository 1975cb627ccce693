"""The `models:`, `routes:` and `routing:` sections: what parses, what is refused, and why."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from routing import (
    BestQualityUnderCostRoute,
    CheapestAboveQualityRoute,
    FallbackRoute,
    LowestLatencyRoute,
    ModelConfig,
    RetryConfig,
    RouteConfig,
    RoutingConfig,
    RuleConfig,
    WeightedRoute,
    check_references,
)
from tests.routing.support import MODELS, load, make_router

ROUTE = TypeAdapter(RouteConfig)


def test_a_route_without_a_strategy_is_a_fallback_route() -> None:
    route = ROUTE.validate_python({"candidates": ["a", "b"]})
    assert isinstance(route, FallbackRoute)
    assert route.fallback_on == ["429", "5xx", "timeout", "connect"]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({"strategy": "weighted", "weights": {"a": 3, "b": 1}}, WeightedRoute),
        ({"strategy": "cheapest_above_quality", "min_quality": 0.8, "candidates": ["a"]}, CheapestAboveQualityRoute),
        ({"strategy": "best_quality_under_cost", "max_cost_usd": 0.01, "candidates": ["a"]}, BestQualityUnderCostRoute),
        ({"strategy": "lowest_latency", "candidates": ["a", "b"]}, LowestLatencyRoute),
    ],
)
def test_the_strategy_tag_chooses_the_route_model(data: dict[str, object], kind: type) -> None:
    assert isinstance(ROUTE.validate_python(data), kind)


def test_weighted_candidates_default_to_the_weights_in_order() -> None:
    route = ROUTE.validate_python({"strategy": "weighted", "weights": {"b": 1, "a": 3}})
    assert route.candidates == ["b", "a"]


@pytest.mark.parametrize(
    "data",
    [
        {"strategy": "weighted", "candidates": ["a", "b"], "weights": {"a": 1}},
        {"strategy": "weighted", "weights": {"a": 0, "b": 0}},
        {"strategy": "weighted", "weights": {"a": -1, "b": 2}},
        {"strategy": "cheapest_above_quality", "candidates": ["a"]},
        {"strategy": "best_quality_under_cost", "max_cost_usd": 0, "candidates": ["a"]},
        {"strategy": "fastest", "candidates": ["a"]},
        {"candidates": ["a", "a"]},
        {"candidates": []},
        {"candidates": ["a"], "min_quality": 0.5},
        {"candidates": ["a"], "downgrade": {"candidates": ["a"]}},
        {"candidates": ["a"], "fallback_on": ["418"]},
    ],
)
def test_bad_routes_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ROUTE.validate_python(data)


def test_yaml_status_numbers_are_trigger_names() -> None:
    route = ROUTE.validate_python(load("{candidates: [a], fallback_on: [429, 5xx, context_length]}"))
    assert route.fallback_on == ["429", "5xx", "context_length"]
    assert RetryConfig.model_validate({"retry_on": [429]}).retry_on == ["429"]


def test_context_length_is_a_fallback_trigger_but_never_a_retry_trigger() -> None:
    with pytest.raises(ValidationError):
        RetryConfig.model_validate({"retry_on": ["context_length"]})


def test_a_rule_has_exactly_one_action() -> None:
    with pytest.raises(ValidationError):
        RuleConfig.model_validate({"match": {"team": "x"}})
    with pytest.raises(ValidationError):
        RuleConfig.model_validate({"route": "r", "candidates": ["a"]})
    with pytest.raises(ValidationError):
        RuleConfig.model_validate({"route": "r", "match": {"prompt_tokens": {}}})
    with pytest.raises(ValidationError):
        RoutingConfig.model_validate({"rules": [], "surprise": 1})


def test_check_references_names_every_dangling_name() -> None:
    models = {n: ModelConfig.model_validate(s) for n, s in load(MODELS).items()}
    models["cheap"] = models["cheap"].model_copy(update={"fallbacks": ["ghost", "embed"]})
    routes = TypeAdapter(dict[str, RouteConfig]).validate_python(
        {
            "r": {"candidates": ["cheap", "nope"], "downgrade": {"when_remaining_usd_below": 1, "candidates": ["x"]}},
            "e": {"candidates": ["embed", "mid"]},
        }
    )
    routing = RoutingConfig.model_validate(
        {"rules": [{"route": "missing"}, {"candidates": ["cheap", "gone"]}, {"route": "r"}]}
    )
    assert check_references(models, routes, routing) == [
        "models.cheap.fallbacks.0: unknown model 'ghost'",
        "models.cheap.fallbacks.1: 'embed' serves embeddings, not chat",
        "routes.r.candidates.1: unknown model 'nope'",
        "routes.r.downgrade.candidates.0: unknown model 'x'",
        "routes.e.candidates.1: 'mid' serves chat, not embeddings",
        "routing.rules.0.route: unknown route 'missing'",
        "routing.rules.1.candidates.1: unknown model 'gone'",
    ]


def test_the_router_refuses_dangling_references() -> None:
    with pytest.raises(ValueError, match="unknown route 'nowhere'"):
        make_router("r: {candidates: [cheap]}", "rules: [{route: nowhere}]")
