"""Latency averages and the health snapshot."""

from __future__ import annotations

import json

import pytest

from routing import HealthTracker, ModelConfig, Target
from tests.routing.support import FakeClock

A = Target("a", "p", "a-up", ModelConfig(provider="p"))
A_AGAIN = Target("a-strict", "p", "a-up", ModelConfig(provider="p", quality=0.9))


def test_ewma_weighs_the_newest_observation_by_alpha() -> None:
    clock = FakeClock()
    health = HealthTracker(ewma_alpha=0.5, half_life_s=1e9, clock=clock)
    for latency in (1.0, 2.0, 4.0):
        health.record_success(A, latency)
    record = health.peek(A)
    assert record is not None
    assert record.latency_s == pytest.approx(2.75)  # 1 -> 1.5 -> 2.75
    assert record.ttft_s is None and record.latency_for(stream=True) == pytest.approx(2.75)
    health.record_success(A, ttft_s=0.2)
    assert record.latency_for(stream=True) == 0.2 and record.latency_s == pytest.approx(2.75)


def test_an_old_average_gives_way_to_a_new_observation() -> None:
    clock = FakeClock()
    health = HealthTracker(ewma_alpha=0.1, half_life_s=10, clock=clock)
    health.record_success(A, 4.0)
    clock.advance(10)
    health.record_success(A, 2.0)  # the old average keeps half its weight after one half-life
    record = health.peek(A)
    assert record is not None and record.latency_s == pytest.approx(3.0)
    clock.advance(0.001)
    health.record_success(A, 0.0)
    assert record.latency_s == pytest.approx(2.7)  # back to alpha


def test_health_is_keyed_by_provider_and_upstream_model() -> None:
    health = HealthTracker(clock=FakeClock())
    health.record_success(A, 1.0)
    assert health.peek(A_AGAIN) is health.peek(A)


def test_snapshot_is_plain_json() -> None:
    clock = FakeClock()
    health = HealthTracker(clock=clock)
    health.record_success(A, 0.25, ttft_s=0.05)
    clock.advance(2)
    health.record_failure(A, "timeout")
    [entry] = health.snapshot()
    json.dumps(entry)
    assert entry == {
        "provider": "p",
        "upstream_model": "a-up",
        "breaker": "closed",
        "breaker_retry_in_s": None,
        "times_opened": 0,
        "latency_ewma_ms": 250.0,
        "ttft_ewma_ms": 50.0,
        "successes": 1,
        "failures": 1,
        "consecutive_failures": 1,
        "last_failure_kind": "timeout",
        "seconds_since_success": 2.0,
        "seconds_since_failure": 0.0,
    }
