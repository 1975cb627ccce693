"""A fake clock and a router built from YAML, for the routing tests."""

from __future__ import annotations

import random
from typing import Any

import yaml
from pydantic import TypeAdapter

from routing import HealthTracker, ModelConfig, RouteConfig, Router, RoutingConfig

_ROUTES = TypeAdapter(dict[str, RouteConfig])


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MODELS = """
cheap:   {provider: p1, input_per_mtok: 0.10, output_per_mtok: 0.40, quality: 0.60, context_window: 16000,
          max_output_tokens: 4000}
mid:     {provider: p2, input_per_mtok: 1.00, output_per_mtok: 4.00, quality: 0.80, context_window: 128000}
strong:  {provider: p3, upstream: strong-2025, input_per_mtok: 3.00, output_per_mtok: 15.0, quality: 0.90,
          context_window: 200000}
premium: {provider: p1, input_per_mtok: 10.0, output_per_mtok: 30.0, quality: 0.95, context_window: 128000,
          capabilities: {tools: false}}
novision: {provider: p2, input_per_mtok: 0.50, output_per_mtok: 1.50, quality: 0.80,
           capabilities: {vision: false, json_schema: false, streaming: false}}
embed:   {provider: p1, kind: embeddings, input_per_mtok: 0.02}
"""


def load(text: str) -> Any:
    return yaml.safe_load(text) or {}


def make_router(
    routes: str = "",
    routing: str = "",
    *,
    models: str = MODELS,
    seed: int = 7,
    clock: FakeClock | None = None,
    health: HealthTracker | None = None,
) -> Router:
    """A router over YAML sections, seeded, on a fake clock."""
    clock = clock or FakeClock()
    return Router(
        {name: ModelConfig.model_validate(spec) for name, spec in load(models).items()},
        _ROUTES.validate_python(load(routes)),
        RoutingConfig.model_validate(load(routing)),
        health,
        rng=random.Random(seed),
        clock=clock,
    )
