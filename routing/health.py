"""What the gateway has seen of each target: latency, failures, and its circuit breaker.

A `HealthTracker` outlives configs: it is keyed by `(provider, upstream model)`, holds no config
object, and takes new breaker settings with `configure` when a reload builds a new `Router`.
One event loop drives it; it is not thread-safe.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Protocol

from routing.breaker import CircuitBreaker
from routing.config import BreakerConfig

TargetKey = tuple[str, str]  # (provider, upstream model)


class HasKey(Protocol):
    """Anything naming a target: `routing.Target` is one."""

    @property
    def provider(self) -> str: ...

    @property
    def upstream_model(self) -> str: ...


class TargetHealth:
    """Observations of one target. Latencies are EWMAs in seconds, None until observed."""

    __slots__ = (
        "breaker",
        "failures",
        "last_failure_at",
        "last_failure_kind",
        "last_observed_at",
        "last_probe_at",
        "last_success_at",
        "latency_s",
        "successes",
        "ttft_s",
    )

    def __init__(self) -> None:
        self.latency_s: float | None = None
        self.ttft_s: float | None = None
        self.successes = 0
        self.failures = 0
        self.last_success_at: float | None = None
        self.last_failure_at: float | None = None
        self.last_failure_kind: str | None = None
        self.last_observed_at: float | None = None
        self.last_probe_at: float | None = None  # when lowest_latency last sent an exploring call
        self.breaker = CircuitBreaker()

    @property
    def consecutive_failures(self) -> int:
        return self.breaker.consecutive_failures

    def latency_for(self, stream: bool) -> float | None:
        """Time to first token for streams (total latency until one is seen), else total latency."""
        if stream and self.ttft_s is not None:
            return self.ttft_s
        return self.latency_s


class HealthTracker:
    """Per-target latency EWMAs, failure counts and circuit breakers, over an injected clock.

    The latency averages weigh the newest observation by `ewma_alpha`, and more when the last one
    is old: the old average keeps `0.5 ** (gap / half_life_s)` of its weight at most.
    """

    def __init__(
        self,
        breaker: BreakerConfig | None = None,
        *,
        ewma_alpha: float = 0.3,
        half_life_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = breaker or BreakerConfig()
        self._alpha = ewma_alpha
        self._half_life = half_life_s
        self.clock = clock
        self._targets: dict[TargetKey, TargetHealth] = {}

    def configure(
        self, breaker: BreakerConfig, ewma_alpha: float | None = None, half_life_s: float | None = None
    ) -> None:
        """New settings from a reloaded config; what was observed is kept."""
        self._settings = breaker
        if ewma_alpha is not None:
            self._alpha = ewma_alpha
        if half_life_s is not None:
            self._half_life = half_life_s

    @property
    def settings(self) -> BreakerConfig:
        return self._settings

    def of(self, target: HasKey) -> TargetHealth:
        """The target's record, created on first use."""
        key = (target.provider, target.upstream_model)
        health = self._targets.get(key)
        if health is None:
            health = self._targets[key] = TargetHealth()
        return health

    def peek(self, target: HasKey) -> TargetHealth | None:
        """The target's record if it has one; creates nothing."""
        return self._targets.get((target.provider, target.upstream_model))

    def allow(self, target: HasKey) -> bool:
        """Whether an attempt may go to the target now. Call it right before each attempt: past the
        breaker's cooldown it hands out the one half-open probe slot, and the attempt must then end
        in `record_success`, `record_failure` or `release`."""
        health = self.peek(target)
        return health is None or health.breaker.allow(self.clock(), self._settings)

    def blocked(self, target: HasKey) -> str | None:
        """Why the breaker would refuse the target now (a skip reason), or None; changes nothing."""
        health = self.peek(target)
        return None if health is None else health.breaker.blocked(self.clock(), self._settings)

    def retry_in(self, target: HasKey) -> float | None:
        """Seconds until a blocked target may be tried again, or None."""
        health = self.peek(target)
        return None if health is None else health.breaker.retry_in(self.clock(), self._settings)

    def record_success(self, target: HasKey, latency_s: float | None = None, ttft_s: float | None = None) -> None:
        """An attempt answered: `latency_s` for a whole answer, `ttft_s` once a stream's first chunk
        arrived (a stream may report only `ttft_s`). Closes the target's breaker."""
        health = self.of(target)
        now = self.clock()
        alpha = self._alpha_after(health.last_success_at, now)
        health.successes += 1
        health.last_success_at = health.last_observed_at = now
        if latency_s is not None:
            health.latency_s = latency_s if health.latency_s is None else _ewma(health.latency_s, latency_s, alpha)
        if ttft_s is not None:
            health.ttft_s = ttft_s if health.ttft_s is None else _ewma(health.ttft_s, ttft_s, alpha)
        health.breaker.on_success()

    def record_failure(self, target: HasKey, kind: str) -> None:
        """An attempt failed; `kind` is a fallback trigger (429, 5xx, timeout, connect,
        context_length). Kinds outside `breaker.count` do not count towards opening the breaker."""
        health = self.of(target)
        now = self.clock()
        health.failures += 1
        health.last_failure_at = health.last_observed_at = now
        health.last_failure_kind = kind
        health.breaker.on_failure(kind, now, self._settings)

    def release(self, target: HasKey) -> None:
        """An attempt ended without a verdict on the target (cancelled by the client, or refused by
        the provider as an invalid request): frees a half-open probe slot, counts nothing."""
        health = self.peek(target)
        if health is not None:
            health.breaker.release()

    def note_probe(self, target: HasKey) -> None:
        """lowest_latency sent an exploring call to the target (at most one per probe interval)."""
        self.of(target).last_probe_at = self.clock()

    def snapshot(self) -> list[dict[str, Any]]:
        """Every target seen, as plain JSON-ready data (for `GET /v1/routes`)."""
        now = self.clock()
        return [self._describe(key, health, now) for key, health in sorted(self._targets.items())]

    def describe(self, target: HasKey) -> dict[str, Any]:
        """One target's health as in `snapshot`, including one never seen."""
        key = (target.provider, target.upstream_model)
        return self._describe(key, self._targets.get(key) or TargetHealth(), self.clock())

    def _describe(self, key: TargetKey, health: TargetHealth, now: float) -> dict[str, Any]:
        breaker = health.breaker
        return {
            "provider": key[0],
            "upstream_model": key[1],
            "breaker": breaker.state(now, self._settings),
            "breaker_retry_in_s": _round(breaker.retry_in(now, self._settings)),
            "times_opened": breaker.times_opened,
            "latency_ewma_ms": _round(None if health.latency_s is None else health.latency_s * 1000),
            "ttft_ewma_ms": _round(None if health.ttft_s is None else health.ttft_s * 1000),
            "successes": health.successes,
            "failures": health.failures,
            "consecutive_failures": breaker.consecutive_failures,
            "last_failure_kind": health.last_failure_kind,
            "seconds_since_success": _round(None if health.last_success_at is None else now - health.last_success_at),
            "seconds_since_failure": _round(None if health.last_failure_at is None else now - health.last_failure_at),
        }

    def _alpha_after(self, previous_at: float | None, now: float) -> float:
        """The newest observation's weight: `ewma_alpha`, or more when the average is old (it loses
        half its weight every `half_life_s`), so a model that recovered while unused is noticed
        from one probe instead of slowly."""
        if previous_at is None:
            return 1.0
        return max(self._alpha, 1.0 - math.pow(0.5, (now - previous_at) / self._half_life))


def _ewma(previous: float, value: float, alpha: float) -> float:
    return previous + alpha * (value - previous)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
