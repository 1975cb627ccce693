"""The model catalog: every name a client may send, and the targets behind it.

`Catalog.plan(name)` is the static view (a route's candidates in config order, one attempt per
target), used to list names and to describe routes; `Router.plan(features)` is the per-call plan.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from routing.config import DEFAULT_TRIGGERS, ModelConfig, RetryConfig, RouteConfig
from routing.retry import CallAttempts, RetryPolicy

DEFAULT_FALLBACK_ON = frozenset(DEFAULT_TRIGGERS)
SINGLE_ATTEMPTS = RetryConfig(max_attempts_per_target=1, max_attempts=20, deadline_s=None)


@dataclass(frozen=True, slots=True)
class Target:
    """One model on one provider, ready to be called."""

    model: str  # the gateway's name for it
    provider: str
    upstream_model: str  # the provider's name for it
    spec: ModelConfig


Considered = tuple[str, str | None]  # (model, why it was skipped, or None when it is a target)


@dataclass(slots=True)  # not frozen: one per call, and frozen fields cost ~0.1 us each to set
class Plan:
    """Where a call goes: the targets in the order to try them, and when to move on.

    `route` is the route that chose the targets (a rule may have chosen it), None when the client
    named a model and no rule sent it elsewhere. `considered` lists every candidate in config
    order with the reason it was skipped (None: it is among `targets`). `rule` names the rule that
    matched; `downgraded` says the route's budget downgrade applied.
    """

    requested: str
    route: str | None
    strategy: str
    targets: tuple[Target, ...]
    fallback_on: frozenset[str]
    retry: RetryPolicy
    considered: tuple[Considered, ...] = ()
    rule: str | None = None
    downgraded: bool = False

    def start(self) -> CallAttempts:
        """The attempt bookkeeping for one call over this plan (retries, fallbacks, deadline)."""
        return self.retry.start(self.fallback_on)

    def skipped(self) -> tuple[Considered, ...]:
        """The candidates left out, each with its reason."""
        return tuple(c for c in self.considered if c[1] is not None)

    def without_first(self, reason: str) -> Plan:
        """This plan less its first target, skipped for `reason` (admission found no room for it)."""
        first = self.targets[0].model
        considered = tuple((model, reason if model == first else why) for model, why in self.considered)
        if first not in dict(self.considered):
            considered += ((first, reason),)
        return replace(self, targets=self.targets[1:], considered=considered)


class Catalog:
    """Models and routes from config, resolved once so that a lookup is a dict access."""

    def __init__(
        self,
        models: Mapping[str, ModelConfig],
        routes: Mapping[str, RouteConfig],
        retry: RetryPolicy | None = None,
    ) -> None:
        retry = retry or RetryPolicy(SINGLE_ATTEMPTS, random.Random(), time.monotonic)
        self._targets = {
            name: Target(name, spec.provider, spec.upstream or name, spec) for name, spec in models.items()
        }
        self._plans: dict[str, Plan] = {}
        for name, target in self._targets.items():
            chain = (target, *(self._targets[f] for f in target.spec.fallbacks if f in self._targets))
            self._plans[name] = Plan(name, None, "single", chain, DEFAULT_FALLBACK_ON, retry)
        for name, route in routes.items():
            targets = tuple(self._targets[c] for c in route.candidates)
            self._plans[name] = Plan(name, name, route.strategy, targets, frozenset(route.fallback_on), retry)

    def plan(self, name: str) -> Plan | None:
        """The static plan for a requested model or route name, or None when the name is unknown."""
        return self._plans.get(name)

    def target(self, model: str) -> Target | None:
        return self._targets.get(model)

    def targets(self) -> Iterator[Target]:
        """Every model's target."""
        return iter(self._targets.values())

    def names(self) -> Iterator[tuple[str, str]]:
        """Every name a client may send, with what it is: ``(name, "model" | "route")``."""
        for name, plan in self._plans.items():
            yield name, "route" if plan.route else "model"

    def __contains__(self, name: object) -> bool:
        return name in self._plans
