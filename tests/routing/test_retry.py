"""Retry delays and the retry / move on / stop decisions, on a seeded source and a fake clock."""

from __future__ import annotations

import random

import pytest

from routing import CallAttempts, RetryConfig, RetryPolicy
from tests.routing.support import FakeClock

TRIGGERS = frozenset({"429", "5xx", "timeout", "connect", "context_length"})


def policy(clock: FakeClock | None = None, seed: int = 3, **settings: object) -> RetryPolicy:
    """A policy that retries each target once (the default is not to retry on the same target)."""
    config = RetryConfig.model_validate({"max_attempts_per_target": 2, **settings})
    return RetryPolicy(config, random.Random(seed), clock or FakeClock())


def test_by_default_a_failed_target_is_not_retried_but_fallbacks_apply() -> None:
    attempts = RetryPolicy(RetryConfig(), random.Random(1), FakeClock()).start(TRIGGERS)
    attempts.begin("a")
    assert attempts.after_failure("5xx", has_next=True).action == "next"
    attempts.begin("b")
    assert attempts.after_failure("5xx", has_next=False).action == "stop"


def test_backoff_is_full_jitter_within_the_exponential_cap() -> None:
    p = policy(base_delay_s=0.1, max_delay_s=1.0)
    for retry, cap in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (12, 1.0)):
        delays = [p.backoff(retry) for _ in range(2000)]
        assert all(0.0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.95 and min(delays) < cap * 0.05  # spread over the whole range
        assert sum(delays) / len(delays) == pytest.approx(cap / 2, rel=0.1)


def test_delays_repeat_under_the_same_seed() -> None:
    assert [policy(seed=9).backoff(3) for _ in range(3)] == [policy(seed=9).backoff(3) for _ in range(3)]
    a, b = policy(seed=9), policy(seed=9)
    assert [a.backoff(n) for n in range(1, 6)] == [b.backoff(n) for n in range(1, 6)]


def test_retry_after_is_honoured_with_a_little_jitter() -> None:
    p = policy(base_delay_s=0.2)
    for _ in range(100):
        delay = p.delay(1, retry_after_s=2.0)
        assert delay is not None and 2.0 <= delay <= 2.2
    assert p.delay(1, retry_after_s=31.0) is None  # longer than max_retry_after_s: move on instead
    ignoring = policy(honour_retry_after=False, base_delay_s=0.2)
    assert all((ignoring.delay(1, 10.0) or 0) <= 0.2 for _ in range(100))


def start(p: RetryPolicy, target: object = "a", fallback_on: frozenset[str] = TRIGGERS) -> CallAttempts:
    attempts = p.start(fallback_on)
    attempts.begin(target)
    return attempts


def test_a_5xx_is_retried_on_the_same_target_then_falls_back() -> None:
    attempts = start(policy(max_attempts_per_target=2))
    first = attempts.after_failure("5xx", has_next=True)
    assert first.action == "retry" and 0 <= first.delay_s <= 0.2
    attempts.begin("a")
    assert attempts.after_failure("5xx", has_next=True).action == "next"
    attempts.begin("b")
    assert attempts.on_target == 1 and attempts.attempts == 3


def test_a_429_moves_on_at_once_when_it_can_and_waits_when_it_cannot() -> None:
    attempts = start(policy())
    assert attempts.after_failure("429", retry_after_s=1.0, has_next=True).action == "next"
    decision = attempts.after_failure("429", retry_after_s=1.0, has_next=False)
    assert decision.action == "retry" and 1.0 <= decision.delay_s <= 1.2


def test_a_long_retry_after_is_not_waited_for() -> None:
    attempts = start(policy(max_retry_after_s=5))
    assert attempts.after_failure("5xx", retry_after_s=60, has_next=True).action == "next"
    assert attempts.after_failure("5xx", retry_after_s=60, has_next=False).action == "stop"


def test_context_length_falls_back_but_is_never_retried() -> None:
    attempts = start(policy())
    assert attempts.after_failure("context_length", has_next=True).action == "next"
    assert attempts.after_failure("context_length", has_next=False).action == "stop"


def test_a_failure_outside_the_routes_triggers_stops() -> None:
    attempts = start(policy(retry_on=["5xx"]), fallback_on=frozenset({"5xx"}))
    decision = attempts.after_failure("timeout", has_next=True)
    assert decision.action == "stop" and "not a fallback trigger" in decision.reason


def test_max_attempts_bounds_the_call() -> None:
    attempts = start(policy(max_attempts=2, max_attempts_per_target=5))
    assert attempts.after_failure("5xx", has_next=True).action == "retry"
    attempts.begin("a")
    assert attempts.after_failure("5xx", has_next=True).action == "stop"
    assert not attempts.can_start()


def test_the_deadline_bounds_waits_and_new_attempts() -> None:
    clock = FakeClock()
    attempts = start(policy(clock, deadline_s=10, base_delay_s=0, max_delay_s=0))
    assert attempts.remaining_s() == 10
    clock.advance(9)
    assert attempts.can_start() and attempts.remaining_s() == pytest.approx(1)
    # retry-after 2 s would end past the deadline: move on instead of waiting
    assert attempts.after_failure("5xx", retry_after_s=2, has_next=True).action == "next"
    assert attempts.after_failure("5xx", retry_after_s=2, has_next=False).action == "stop"
    clock.advance(1)
    assert not attempts.can_start() and attempts.remaining_s() == 0
    assert attempts.after_failure("5xx", has_next=True).action == "stop"


def test_no_deadline() -> None:
    clock = FakeClock()
    attempts = start(policy(clock, deadline_s=None))
    clock.advance(10_000)
    assert attempts.can_start() and attempts.remaining_s() is None
    assert attempts.after_failure("connect", has_next=False).action == "retry"
