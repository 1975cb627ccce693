"""Routing: the model catalog, route strategies and fallback order, health and circuit breaking,
as plain Python over plain data.

Nothing here imports the gateway or any HTTP library; the gateway hands in what it knows about a
call and gets back an ordered list of targets. Randomness and time are injected
(`random.Random`, a `Callable[[], float]` monotonic clock), so every decision is reproducible.

The contract::

    health = HealthTracker()                      # once per process; survives reloads
    router = Router(config.models, config.routes, config.routing, health)   # once per config
    features = RequestFeatures(requested_model=body["model"], est_prompt_tokens=..., max_tokens=...,
                               allowed_models=router.allowed_models(principal.models), ...)
    plan = router.plan(features)      # None: unknown name (404); raises NoTarget (.status 503/400/403/404)
    attempts = plan.start()           # retries, fallbacks and the deadline of this call
    i = 0
    while i < len(plan.targets) and attempts.can_start():
        target = plan.targets[i]
        if not health.allow(target):  # breaker; past the cooldown this takes the one half-open probe
            i += 1
            continue
        attempts.begin(target)
        ...send...                    # timeout may be capped by attempts.remaining_s()
        on success:   health.record_success(target, latency_s, ttft_s); done
        on cancel, or a request the provider found invalid: health.release(target); re-raise
        on failure:   health.record_failure(target, kind)   # kind: 429 5xx timeout connect context_length
                      d = attempts.after_failure(kind, retry_after_s=..., has_next=i + 1 < len(plan.targets))
                      "retry": sleep d.delay_s, same target; "next": i += 1; "stop": give up

Modules: `config` (pydantic models of `models:`, `routes:`, `routing:`), `catalog` (Target, Plan,
the static Catalog), `features` (RequestFeatures), `rules`, `strategies`, `router`, `retry`,
`breaker`, `health`, `errors` (NoTarget).
"""

from routing.breaker import BreakerState, CircuitBreaker
from routing.catalog import Catalog, Plan, Target
from routing.config import (
    BestQualityUnderCostRoute,
    BreakerConfig,
    Capabilities,
    CheapestAboveQualityRoute,
    DowngradeConfig,
    FallbackRoute,
    FallbackTrigger,
    LowestLatencyRoute,
    ModelConfig,
    RetryConfig,
    RouteConfig,
    RoutingConfig,
    RuleConfig,
    RuleMatch,
    WeightedRoute,
    check_references,
)
from routing.errors import NoTarget, reason_code
from routing.features import RequestFeatures
from routing.health import HealthTracker, TargetHealth
from routing.retry import CallAttempts, Decision, RetryPolicy
from routing.router import Router

__all__ = [
    "BestQualityUnderCostRoute",
    "BreakerConfig",
    "BreakerState",
    "CallAttempts",
    "Capabilities",
    "Catalog",
    "CheapestAboveQualityRoute",
    "CircuitBreaker",
    "Decision",
    "DowngradeConfig",
    "FallbackRoute",
    "FallbackTrigger",
    "HealthTracker",
    "LowestLatencyRoute",
    "ModelConfig",
    "NoTarget",
    "Plan",
    "RequestFeatures",
    "RetryConfig",
    "RetryPolicy",
    "RouteConfig",
    "Router",
    "RoutingConfig",
    "RuleConfig",
    "RuleMatch",
    "Target",
    "TargetHealth",
    "WeightedRoute",
    "check_references",
    "reason_code",
]
