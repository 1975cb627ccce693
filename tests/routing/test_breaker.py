"""The per-target circuit breaker, through the health tracker, on a fake clock."""

from __future__ import annotations

from routing import BreakerConfig, HealthTracker, ModelConfig, Target
from tests.routing.support import FakeClock

TARGET = Target("m", "p", "m-1", ModelConfig(provider="p"))
OTHER = Target("n", "p", "n-1", ModelConfig(provider="p"))


def tracker(clock: FakeClock, **settings: object) -> HealthTracker:
    settings = {"failure_threshold": 3, "cooldown_s": 30, **settings}
    return HealthTracker(BreakerConfig.model_validate(settings), clock=clock)


def state(health: HealthTracker, target: Target = TARGET) -> str:
    return str(health.describe(target)["breaker"])


def test_opens_after_n_consecutive_failures() -> None:
    clock = FakeClock()
    health = tracker(clock)
    for _ in range(2):
        health.record_failure(TARGET, "5xx")
    health.record_success(TARGET, 0.1)  # a success resets the run
    for _ in range(2):
        health.record_failure(TARGET, "timeout")
    assert state(health) == "closed" and health.allow(TARGET)
    health.record_failure(TARGET, "connect")
    assert state(health) == "open"
    assert not health.allow(TARGET)
    assert health.blocked(TARGET) == "circuit_open: open for 30.0 s more"
    assert health.allow(OTHER) and state(health, OTHER) == "closed"


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    clock = FakeClock()
    health = tracker(clock, failure_threshold=1)
    health.record_failure(TARGET, "5xx")
    clock.advance(29.9)
    assert not health.allow(TARGET) and health.retry_in(TARGET) is not None
    clock.advance(0.1)
    assert state(health) == "half_open" and health.blocked(TARGET) is None
    assert health.allow(TARGET)  # takes the probe slot
    assert not health.allow(TARGET)  # one probe at a time
    assert health.blocked(TARGET) == "circuit_open: half-open, a probe is in flight"
    health.record_success(TARGET, 0.2)
    assert state(health) == "closed"
    assert health.allow(TARGET) and health.allow(TARGET)


def test_a_failed_probe_reopens_for_a_full_cooldown() -> None:
    clock = FakeClock()
    health = tracker(clock, failure_threshold=2)
    health.record_failure(TARGET, "5xx")
    health.record_failure(TARGET, "5xx")
    clock.advance(30)
    assert health.allow(TARGET)
    health.record_failure(TARGET, "5xx")  # one failure in half-open is enough
    assert state(health) == "open"
    clock.advance(29)
    assert not health.allow(TARGET)
    clock.advance(1)
    assert health.allow(TARGET)
    assert health.describe(TARGET)["times_opened"] == 2


def test_failures_outside_count_do_not_open_it_and_free_the_probe() -> None:
    clock = FakeClock()
    health = tracker(clock, failure_threshold=1, count=["5xx"])
    health.record_failure(TARGET, "context_length")
    health.record_failure(TARGET, "429")
    assert state(health) == "closed"
    health.record_failure(TARGET, "5xx")
    clock.advance(30)
    assert health.allow(TARGET)
    health.record_failure(TARGET, "context_length")  # says nothing about the target
    assert state(health) == "half_open" and health.allow(TARGET)


def test_a_released_or_lost_probe_frees_the_slot() -> None:
    clock = FakeClock()
    health = tracker(clock, failure_threshold=1, probe_timeout_s=60)
    health.record_failure(TARGET, "5xx")
    clock.advance(30)
    assert health.allow(TARGET)
    health.release(TARGET)  # the client went away
    assert health.allow(TARGET)
    assert not health.allow(TARGET)
    clock.advance(60)  # the probe never reported
    assert health.allow(TARGET)


def test_new_settings_keep_the_state() -> None:
    clock = FakeClock()
    health = tracker(clock, failure_threshold=5)
    for _ in range(3):
        health.record_failure(TARGET, "5xx")
    health.configure(BreakerConfig(failure_threshold=4, cooldown_s=5))
    health.record_failure(TARGET, "5xx")
    assert state(health) == "open"
    clock.advance(5)
    assert health.allow(TARGET)
