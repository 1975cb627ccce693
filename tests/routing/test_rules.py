"""Rules choose a route or narrow the candidates; the first match in config order wins."""

from __future__ import annotations

import pytest

from routing import RequestFeatures, Router
from tests.routing.support import make_router

ROUTES = """
auto:    {candidates: [cheap, mid, strong]}
long:    {candidates: [strong]}
premium: {candidates: [premium, strong]}
"""

RULES = """
rules:
  - {name: long-prompts, match: {prompt_tokens: {gt: 100000}}, route: long}
  - {name: vip, match: {team: [research, "ml-*"], tags: {tier: gold}}, route: premium}
  - {name: tools, match: {has_tools: true, model: "au*"}, candidates: [mid, strong]}
  - {name: canary-header, match: {headers: {X-Canary: "on"}}, candidates: [cheap]}
  - {name: crawler, match: {agent: crawler, task: "nightly-?"}, candidates: [cheap]}
  - {name: short, match: {prompt_tokens: {lt: 10}, model: [auto, cheap]}, route: long}
"""


def plan(router: Router, **facts: object) -> tuple[str | None, str | None, list[str]]:
    facts.setdefault("requested_model", "auto")
    facts.setdefault("est_prompt_tokens", 500)
    result = router.plan(RequestFeatures(**facts))  # type: ignore[arg-type]
    assert result is not None
    return result.rule, result.route, [t.model for t in result.targets]


@pytest.fixture
def router() -> Router:
    return make_router(ROUTES, RULES)


def test_no_rule_matches(router: Router) -> None:
    assert plan(router) == (None, "auto", ["cheap", "mid", "strong"])


def test_prompt_tokens_choose_a_route(router: Router) -> None:
    assert plan(router, est_prompt_tokens=150_000) == ("long-prompts", "long", ["strong"])
    assert plan(router, est_prompt_tokens=5) == ("short", "long", ["strong"])


def test_team_glob_and_tags_must_all_hold(router: Router) -> None:
    gold = (("env", "prod"), ("tier", "gold"))
    assert plan(router, team="ml-vision", tags=gold)[1] == "premium"
    assert plan(router, team="research", tags=gold)[1] == "premium"
    assert plan(router, team="research", tags=(("tier", "silver"),))[1] == "auto"
    assert plan(router, team="sales", tags=gold)[1] == "auto"
    assert plan(router, tags=gold)[1] == "auto"  # no team: a team condition does not hold


def test_first_match_wins_in_config_order(router: Router) -> None:
    # matches long-prompts, vip and tools: the first listed wins
    facts = {"est_prompt_tokens": 200_000, "team": "research", "tags": (("tier", "gold"),), "needs_tools": True}
    assert plan(router, **facts)[0] == "long-prompts"
    facts["est_prompt_tokens"] = 500
    assert plan(router, **facts)[0] == "vip"


def test_narrowing_keeps_the_route_and_its_order(router: Router) -> None:
    rule, route, targets = plan(router, needs_tools=True)
    assert (rule, route, targets) == ("tools", "auto", ["mid", "strong"])
    result = router.plan(RequestFeatures(requested_model="auto", needs_tools=True, est_prompt_tokens=500))
    assert result is not None
    assert dict(result.considered)["cheap"] == "excluded_by_rule: not among the candidates of rule 'tools'"


def test_model_globs_match_the_requested_name(router: Router) -> None:
    assert plan(router, requested_model="premium", needs_tools=True)[0] is None


def test_headers_match_case_insensitively_and_are_listed(router: Router) -> None:
    assert router.rule_headers() == frozenset({"x-canary"})
    assert plan(router, headers={"x-canary": "on"}) == ("canary-header", "auto", ["cheap"])
    assert plan(router, headers={"x-canary": "off"})[0] is None


def test_agent_and_task(router: Router) -> None:
    assert plan(router, agent="crawler", task="nightly-3")[0] == "crawler"
    assert plan(router, agent="crawler", task="nightly-33")[0] is None
    assert plan(router, agent="crawler")[0] is None


def test_a_rule_can_route_a_concrete_model(router: Router) -> None:
    assert plan(router, requested_model="cheap", est_prompt_tokens=3) == ("short", "long", ["strong"])
    assert plan(router, requested_model="cheap")[1:] == (None, ["cheap"])


def test_an_unknown_name_is_unknown_whatever_the_rules(router: Router) -> None:
    assert router.plan(RequestFeatures(requested_model="nope", est_prompt_tokens=150_000)) is None


def test_a_rule_grants_the_route_it_sends_a_call_to(router: Router) -> None:
    allowed = router.allowed_models(["auto"])
    assert allowed == frozenset({"auto", "cheap", "mid", "strong"})
    assert plan(router, allowed_models=allowed, team="research", tags=(("tier", "gold"),))[2] == ["premium", "strong"]


def test_rule_names_default_to_their_position() -> None:
    router = make_router(ROUTES, "rules: [{match: {has_tools: true}, route: long}]")
    assert plan(router, needs_tools=True)[0] == "rules.0"
    assert make_router(ROUTES, "rules: [{route: long}]").plan(RequestFeatures(requested_model="cheap")) is not None
