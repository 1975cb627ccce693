"""The documented attempt loop (routing/__init__.py) driven over fake upstreams that fail in each
way: which target answers, after which attempts, and how the breakers end up."""

from __future__ import annotations

from collections.abc import Callable

from routing import RequestFeatures, Router, Target
from tests.routing.support import FakeClock, make_router

Outcome = tuple[str, float | None]  # ("ok" | failure kind, retry-after)
Upstream = Callable[[Target], Outcome]

ROUTES = "chain: {candidates: [cheap, mid, strong], fallback_on: [429, 5xx, timeout, connect, context_length]}"
ROUTING = """
retry: {max_attempts_per_target: 2, max_attempts: 5, base_delay_s: 0.5, max_delay_s: 2, deadline_s: 30}
breaker: {failure_threshold: 2, cooldown_s: 60}
"""


def call(router: Router, clock: FakeClock, upstream: Upstream) -> tuple[str | None, list[str]]:
    """The loop from routing/__init__.py: the answering model (None: gave up) and every attempt."""
    plan = router.plan(RequestFeatures(requested_model="chain"))
    assert plan is not None
    attempts, log, i = plan.start(), [], 0
    while i < len(plan.targets) and attempts.can_start():
        target = plan.targets[i]
        if not router.health.allow(target):
            log.append(f"{target.model}:breaker")
            i += 1
            continue
        attempts.begin(target)
        outcome, retry_after = upstream(target)
        clock.advance(0.1)
        log.append(f"{target.model}:{outcome}")
        if outcome == "ok":
            router.health.record_success(target, 0.1)
            return target.model, log
        router.health.record_failure(target, outcome)
        decision = attempts.after_failure(outcome, retry_after_s=retry_after, has_next=i + 1 < len(plan.targets))
        if decision.action == "retry":
            clock.advance(decision.delay_s)
        elif decision.action == "next":
            i += 1
        else:
            break
    return None, log


def failing(**outcomes: Outcome) -> Upstream:
    return lambda target: outcomes.get(target.model, ("ok", None))


def test_a_5xx_is_retried_once_then_the_chain_moves_on() -> None:
    clock = FakeClock()
    router = make_router(ROUTES, ROUTING, clock=clock)
    answer, log = call(router, clock, failing(cheap=("5xx", None)))
    assert (answer, log) == ("mid", ["cheap:5xx", "cheap:5xx", "mid:ok"])


def test_a_429_moves_on_at_once_and_context_length_is_not_retried() -> None:
    clock = FakeClock()
    router = make_router(ROUTES, ROUTING, clock=clock)
    answer, log = call(router, clock, failing(cheap=("429", 1.0), mid=("context_length", None)))
    assert (answer, log) == ("strong", ["cheap:429", "mid:context_length", "strong:ok"])


def test_the_last_target_waits_for_retry_after_then_answers() -> None:
    clock = FakeClock()
    router = make_router(ROUTES, ROUTING, clock=clock)
    tries = {"strong": 0}

    def upstream(target: Target) -> Outcome:
        if target.model != "strong":
            return ("context_length", None)
        tries["strong"] += 1
        return ("429", 3.0) if tries["strong"] == 1 else ("ok", None)

    start = clock.now
    answer, log = call(router, clock, upstream)
    assert answer == "strong"
    assert log == ["cheap:context_length", "mid:context_length", "strong:429", "strong:ok"]
    assert 3.0 <= clock.now - start <= 4.0


def test_max_attempts_stops_the_call() -> None:
    clock = FakeClock()
    router = make_router(ROUTES, ROUTING, clock=clock)
    answer, log = call(router, clock, failing(cheap=("5xx", None), mid=("5xx", None), strong=("5xx", None)))
    assert answer is None and len(log) == 5


def test_open_breakers_are_skipped_by_later_calls_and_probed_after_the_cooldown() -> None:
    clock = FakeClock()
    router = make_router(ROUTES, ROUTING, clock=clock)
    call(router, clock, failing(cheap=("timeout", None)))  # two timeouts: cheap's breaker opens
    answer, log = call(router, clock, failing())
    assert (answer, log) == ("mid", ["mid:ok"])  # planned without cheap
    plan = router.plan(RequestFeatures(requested_model="chain"))
    assert plan is not None and dict(plan.considered)["cheap"].startswith("circuit_open")  # type: ignore[union-attr]
    clock.advance(60)
    answer, log = call(router, clock, failing())
    assert (answer, log) == ("cheap", ["cheap:ok"])  # the probe went through and closed it
