"""The model catalog: what a requested name means, as an ordered list of upstream targets."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from routing.config import DEFAULT_TRIGGERS, ModelConfig, RouteConfig

DEFAULT_FALLBACK_ON = frozenset(DEFAULT_TRIGGERS)


@dataclass(frozen=True, slots=True)
class Target:
    """One model on one provider, ready to be called."""

    model: str  # the gateway's name for it
    provider: str
    upstream_model: str  # the provider's name for it
    spec: ModelConfig


@dataclass(frozen=True, slots=True)
class Plan:
    """Where a call goes: the targets in the order to try them, and when to move on."""

    requested: str
    route: str | None  # the route's name when the client asked for a route, else None
    strategy: str
    targets: tuple[Target, ...]
    fallback_on: frozenset[str]


class Catalog:
    """Models and routes from config, resolved once so that a lookup is a dict access."""

    def __init__(self, models: Mapping[str, ModelConfig], routes: Mapping[str, RouteConfig]) -> None:
        self._targets = {
            name: Target(name, spec.provider, spec.upstream or name, spec) for name, spec in models.items()
        }
        self._plans: dict[str, Plan] = {}
        for name, target in self._targets.items():
            self._plans[name] = Plan(name, None, "single", (target,), DEFAULT_FALLBACK_ON)
        for name, route in routes.items():
            targets = tuple(self._targets[c] for c in route.candidates)
            self._plans[name] = Plan(name, name, route.strategy, targets, frozenset(route.fallback_on))

    def plan(self, name: str) -> Plan | None:
        """The plan for a requested model or route name, or None when the name is unknown."""
        return self._plans.get(name)

    def target(self, model: str) -> Target | None:
        return self._targets.get(model)

    def names(self) -> Iterator[tuple[str, str]]:
        """Every name a client may send, with what it is: ``(name, "model" | "route")``."""
        for name, plan in self._plans.items():
            yield name, "route" if plan.route else "model"

    def __contains__(self, name: object) -> bool:
        return name in self._plans
