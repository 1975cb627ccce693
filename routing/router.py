"""The router: from what is known of a call to an ordered plan of targets.

Per call, `Router.plan(features)`:

1. looks the requested name up (a model or a route; unknown: None);
2. applies the first matching rule: `route:` replaces the route, `candidates:` narrows;
3. swaps in the route's downgrade candidates when the caller's remaining budget is low;
4. skips each candidate that cannot serve the call (operation, permission, capability, context
   window, max output, open breaker), with a reason;
5. lets the route's strategy order the rest (and skip more: quality floor, cost cap);
6. returns a `Plan`, or raises `NoTarget` when nothing is left.

Everything per route is prepared once in the constructor: a plan over 20 candidates takes about
5 to 25 microseconds (`python bench/routing_bench.py`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from routing.catalog import DEFAULT_FALLBACK_ON, Catalog, Plan
from routing.config import ModelConfig, RetryConfig, RouteConfig, RoutingConfig, check_references
from routing.errors import NoTarget
from routing.features import RequestFeatures
from routing.health import HealthTracker
from routing.retry import RetryPolicy
from routing.rules import Rules
from routing.strategies import (
    JSON_SCHEMA,
    STREAMING,
    TOOLS,
    VISION,
    BestQualityUnderCost,
    Candidate,
    CheapestAboveQuality,
    Fallback,
    LowestLatency,
    Strategy,
    Weighted,
)

_FALLBACK = Fallback()


class _Downgrade:
    __slots__ = ("candidates", "clean", "fraction_below", "replaced", "usd_below")

    def __init__(
        self,
        usd_below: float | None,
        fraction_below: float | None,
        candidates: tuple[Candidate, ...],
        regular: tuple[Candidate, ...],
    ) -> None:
        self.usd_below = usd_below
        self.fraction_below = fraction_below
        self.candidates = candidates
        self.clean = _clean(candidates)
        names = {c.name for c in candidates}
        reason = "downgraded: the caller's remaining budget is below the route's downgrade threshold"
        self.replaced = tuple((c.name, reason) for c in regular if c.name not in names)

    def applies(self, features: RequestFeatures) -> bool:
        usd, fraction = features.budget_remaining_usd, features.budget_fraction_remaining
        return (self.usd_below is not None and usd is not None and usd < self.usd_below) or (
            self.fraction_below is not None and fraction is not None and fraction < self.fraction_below
        )


def _clean(candidates: tuple[Candidate, ...]) -> tuple[tuple[str, str | None], ...]:
    """`considered` when nothing was skipped."""
    return tuple((c.name, None) for c in candidates)


class _Entry:
    """A requested name, prepared: a route, or a model with its fallbacks."""

    __slots__ = ("candidates", "clean", "downgrade", "fallback_on", "members", "retry", "route", "strategy")

    def __init__(
        self,
        route: str | None,
        strategy: Strategy,
        candidates: tuple[Candidate, ...],
        fallback_on: frozenset[str],
        retry: RetryPolicy,
        downgrade: _Downgrade | None = None,
    ) -> None:
        self.route = route
        self.strategy = strategy
        self.candidates = candidates
        self.clean = _clean(candidates)
        self.fallback_on = fallback_on
        self.retry = retry
        self.downgrade = downgrade
        self.members = frozenset(c.name for c in candidates) | frozenset(
            c.name for c in (downgrade.candidates if downgrade else ())
        )


class Router:
    """Plans calls over one config's models, routes and rules. Build one per config; pass the same
    `HealthTracker` to each so observations survive a reload (the constructor applies this
    config's breaker settings to it). `rng` and `clock` make every choice reproducible."""

    def __init__(
        self,
        models: Mapping[str, ModelConfig],
        routes: Mapping[str, RouteConfig],
        config: RoutingConfig | None = None,
        health: HealthTracker | None = None,
        *,
        provider_apis: Mapping[str, frozenset[str]] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """`provider_apis`: the APIs each provider speaks natively, by provider name (for calls that
        need one spoken natively: see `RequestFeatures.native_api`)."""
        config = config or RoutingConfig()
        problems = check_references(models, routes, config)
        if problems:
            raise ValueError("\n".join(problems))
        self.config = config
        self.rng = rng or random.Random()
        self.clock = clock or time.monotonic
        self.health = health or HealthTracker(clock=self.clock)
        self.health.configure(config.breaker, config.latency_ewma_alpha, config.latency_half_life_s)
        self._retry_default = RetryPolicy(config.retry, self.rng, self.clock)
        self.catalog = Catalog(models, routes, self._retry_default)
        self._rules = Rules(config.rules)
        targets = {t.model: t for t in self.catalog.targets()}

        apis = provider_apis or {}

        def candidates(names: Sequence[str]) -> tuple[Candidate, ...]:
            return tuple(
                Candidate(targets[n], i, self.health.of(targets[n]), apis.get(targets[n].provider, frozenset()))
                for i, n in enumerate(names)
            )

        self._entries: dict[str, _Entry] = {}
        for name, spec in models.items():
            chain = candidates([name, *(f for f in spec.fallbacks if f in targets)])
            self._entries[name] = _Entry(None, _FALLBACK, chain, DEFAULT_FALLBACK_ON, self._retry_default)
        for name, route in routes.items():
            regular = candidates(route.candidates)
            downgrade = None
            if route.downgrade is not None:
                d = route.downgrade
                downgrade = _Downgrade(
                    d.when_remaining_usd_below, d.when_remaining_fraction_below, candidates(d.candidates), regular
                )
            self._entries[name] = _Entry(
                name,
                self._strategy(route),
                regular,
                frozenset(route.fallback_on),
                self._retry(route.retry),
                downgrade,
            )
        self._grants: dict[frozenset[str], frozenset[str] | None] = {}
        rerouted = {rule.route for rule in config.rules if rule.route is not None}
        self._downgrade_anywhere = any(self._entries[name].downgrade is not None for name in rerouted)

    def may_downgrade(self, requested: str) -> bool:
        """Whether a call for `requested` can end on a route with a budget downgrade (directly, or
        through a rule): only then do `features` need the caller's remaining budget."""
        entry = self._entries.get(requested)
        return self._downgrade_anywhere or (entry is not None and entry.downgrade is not None)

    def plan(self, features: RequestFeatures) -> Plan | None:
        """The ordered targets for a call; None when the requested name is neither a model nor a
        route. Raises `NoTarget` (with every candidate's skip reason) when none can serve it."""
        requested = features.requested_model
        entry = self._entries.get(requested)
        if entry is None:
            return None
        rule = self._rules.first_match(features) if len(self._rules) else None
        narrow: frozenset[str] | None = None
        allowed = features.allowed_models
        if rule is not None:
            if rule.route is not None:
                entry = self._entries[rule.route]
                if allowed is not None:  # the operator's rule grants what it routes to
                    allowed = allowed | entry.members
            else:
                narrow = rule.candidates
        candidates, clean, strategy, downgraded = entry.candidates, entry.clean, entry.strategy, False
        downgrade = entry.downgrade
        if downgrade is not None and downgrade.applies(features):
            candidates, clean, strategy, downgraded = downgrade.candidates, downgrade.clean, _FALLBACK, True

        # A fast test of each candidate; the reason is worked out only for those that fail it.
        operation, max_tokens, native = features.operation, features.max_tokens or 0, features.native_api
        total = features.est_prompt_tokens + max_tokens
        need = (
            (TOOLS if features.needs_tools else 0)
            | (JSON_SCHEMA if features.needs_json_schema else 0)
            | (VISION if features.needs_vision else 0)
            | (STREAMING if features.stream else 0)
        )
        reasons: dict[str, str] = {}
        eligible: list[Candidate] = []
        now: float | None = None
        for c in candidates:
            name = c.name
            if (
                c.kind == operation
                and not need & c.lacks
                and total <= c.window_or_unbounded
                and max_tokens <= c.max_output_or_unbounded
                and (allowed is None or name in allowed)
                and (narrow is None or name in narrow)
                and (native is None or native in c.apis)
            ):
                breaker = c.health.breaker
                if breaker.raw_state == "closed":
                    eligible.append(c)
                    continue
                now = self.clock() if now is None else now
                reason = breaker.blocked(now, self.health.settings)
                if reason is None:
                    eligible.append(c)
                    continue
            else:
                reason = _unfit(c, features, allowed, narrow, rule.name if rule else "")
            reasons[name] = reason
        ordered, skipped = strategy.order(eligible, features) if eligible else ([], [])
        for name, reason in skipped:
            reasons[name] = reason
        considered = tuple([(c.name, reasons.get(c.name)) for c in candidates]) if reasons else clean
        if downgraded:
            assert downgrade is not None
            considered += downgrade.replaced
        if not ordered:
            waits = [w for c in candidates if (w := self.health.retry_in(c.target)) is not None]
            raise NoTarget(requested, entry.route, considered, min(waits) if waits else None)
        return Plan(
            requested=requested,
            route=entry.route,
            strategy="downgrade" if downgraded else strategy.name if entry.route else "single",
            targets=tuple([c.target for c in ordered]),
            fallback_on=entry.fallback_on,
            retry=entry.retry,
            considered=considered,
            rule=rule.name if rule else None,
            downgraded=downgraded,
        )

    def allowed_models(self, grants: Iterable[str]) -> frozenset[str] | None:
        """The models a key's grants reach, for `RequestFeatures.allowed_models`: None when they
        include "*". A key that names models of its own may use exactly those (the routes it names
        may be requested, and their other candidates, like its models' fallbacks, are skipped as
        `not_allowed`); a key that names only routes may use whatever they route to (candidates and
        downgrade candidates). Cached per distinct set of grants (one per key, in practice)."""
        key = frozenset(grants)
        if key in self._grants:
            return self._grants[key]
        if len(self._grants) >= 4096:
            self._grants.clear()
        reached: frozenset[str] | None = None
        if "*" not in key:
            routes = [self._entries[g] for g in key if g in self._entries and self._entries[g].route is not None]
            names_models = len(routes) < len(key)
            reached = key if names_models else key.union(*(route.members for route in routes))
        self._grants[key] = reached
        return reached

    def rule_headers(self) -> frozenset[str]:
        """The lower-cased request header names rules look at: put these in `features.headers`."""
        return self._rules.headers

    def describe(self) -> list[dict[str, Any]]:
        """Every route and model with its targets' health, as plain data (for `GET /v1/routes`)."""
        described = []
        for name, entry in self._entries.items():
            targets = [{"model": c.name, **self.health.describe(c.target)} for c in entry.candidates]
            item: dict[str, Any] = {
                "name": name,
                "type": "route" if entry.route else "model",
                "strategy": entry.strategy.name if entry.route else "single",
                "targets": targets,
            }
            if entry.downgrade is not None:
                item["downgrade"] = [c.name for c in entry.downgrade.candidates]
            described.append(item)
        return described

    def _retry(self, override: RetryConfig | None) -> RetryPolicy:
        return self._retry_default if override is None else RetryPolicy(override, self.rng, self.clock)

    def _strategy(self, route: RouteConfig) -> Strategy:
        default_output = self.config.default_output_tokens
        if route.strategy == "weighted":
            return Weighted(route.weights, route.sticky, self.rng)
        if route.strategy == "cheapest_above_quality":
            output = route.expected_output_tokens or default_output
            return CheapestAboveQuality(route.min_quality, route.below_quality_fallback, output)
        if route.strategy == "best_quality_under_cost":
            return BestQualityUnderCost(route.max_cost_usd, route.expected_output_tokens or default_output)
        if route.strategy == "lowest_latency":
            return LowestLatency(self.health, self.rng, route.epsilon, route.probe_after_s)
        return _FALLBACK


def _unfit(
    c: Candidate,
    f: RequestFeatures,
    allowed: frozenset[str] | None,
    narrow: frozenset[str] | None,
    rule: str,
) -> str:
    """Why a candidate failed the fast test in `Router.plan`. The reason starts with its code."""
    if narrow is not None and c.name not in narrow:
        return f"excluded_by_rule: not among the candidates of rule '{rule}'"
    if c.kind != f.operation:
        return f"kind: serves {c.kind}, not {f.operation}"
    if allowed is not None and c.name not in allowed:
        return "not_allowed: the key may not use this model"
    if f.needs_tools and c.lacks & TOOLS:
        return "capability: the model does not support tools"
    if f.needs_json_schema and c.lacks & JSON_SCHEMA:
        return "capability: the model does not support response_format json_schema"
    if f.needs_vision and c.lacks & VISION:
        return "capability: the model does not accept images"
    if f.stream and c.lacks & STREAMING:
        return "capability: the model does not stream"
    # the same bounds as the fast test (a model without a window or output limit gets UNBOUNDED)
    window = c.window_or_unbounded
    if f.est_prompt_tokens + (f.max_tokens or 0) > window:
        return f"context_window: {f.est_prompt_tokens} prompt + {f.max_tokens or 0} max_tokens > {window} tokens"
    if f.native_api is not None and f.native_api not in c.apis:
        return f"api: {f.native_param} needs a provider that speaks the {f.native_api} API itself"
    return f"max_output_tokens: max_tokens {f.max_tokens or 0} > {c.max_output_or_unbounded}"
