"""A circuit breaker for one target, over an injected clock.

    closed ──(failure_threshold consecutive counted failures)──► open
    open ──(cooldown_s elapsed; the next `allow` takes the one probe slot)──► half_open
    half_open ──(probe succeeds)──► closed
    half_open ──(probe fails)──► open (the cooldown starts again)

Only the failure kinds listed in `BreakerConfig.count` count; others (a context-length error, a
request the provider found invalid) neither count nor reset the run. A probe that reports
neither success nor failure (`release`, or nothing within `probe_timeout_s`) frees the slot.
"""

from __future__ import annotations

from typing import Literal

from routing.config import BreakerConfig

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """The breaker's state machine. Every method takes `now` (seconds on a monotonic clock) and
    the current settings, so the settings can change on a config reload without losing state."""

    __slots__ = ("consecutive_failures", "opened_at", "probe_started_at", "raw_state", "times_opened")

    def __init__(self) -> None:
        self.raw_state: BreakerState = "closed"  # as last set; `state(now)` also reports a cooldown that ended
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.probe_started_at: float | None = None  # set while the half-open probe is out
        self.times_opened = 0

    def state(self, now: float, settings: BreakerConfig) -> BreakerState:
        """`open` while cooling down; `half_open` once the cooldown is over (a probe may go)."""
        if self.raw_state == "open" and self.opened_at is not None and now - self.opened_at >= settings.cooldown_s:
            return "half_open"
        return self.raw_state

    def blocked(self, now: float, settings: BreakerConfig) -> str | None:
        """Why a call may not go to this target now, or None; changes nothing."""
        if self.raw_state == "closed":
            return None
        if self.raw_state == "open":
            assert self.opened_at is not None
            left = self.opened_at + settings.cooldown_s - now
            return f"circuit_open: open for {left:.1f} s more" if left > 0 else None
        if self.probe_started_at is not None and now - self.probe_started_at < settings.probe_timeout_s:
            return "circuit_open: half-open, a probe is in flight"
        return None

    def retry_in(self, now: float, settings: BreakerConfig) -> float | None:
        """Seconds until a call may be let through, or None when one may go now."""
        if self.raw_state == "open" and self.opened_at is not None:
            left = self.opened_at + settings.cooldown_s - now
            return left if left > 0 else None
        if self.raw_state == "half_open" and self.probe_started_at is not None:
            left = self.probe_started_at + settings.probe_timeout_s - now
            return left if left > 0 else None
        return None

    def allow(self, now: float, settings: BreakerConfig) -> bool:
        """Whether a call may go now; past the cooldown, the caller takes the one probe slot."""
        if self.raw_state == "closed":
            return True
        if self.blocked(now, settings) is not None:
            return False
        self.raw_state = "half_open"
        self.probe_started_at = now
        return True

    def on_success(self) -> None:
        self.raw_state = "closed"
        self.consecutive_failures = 0
        self.opened_at = None
        self.probe_started_at = None

    def on_failure(self, kind: str, now: float, settings: BreakerConfig) -> None:
        if kind not in settings.count:
            self.release()
            return
        self.consecutive_failures += 1
        if self.raw_state == "half_open" or (
            self.raw_state == "closed" and self.consecutive_failures >= settings.failure_threshold
        ):
            self._open(now)

    def release(self) -> None:
        """An attempt ended without a verdict (cancelled, or a failure that says nothing about the
        target): a half-open probe slot is freed for the next call."""
        self.probe_started_at = None

    def _open(self, now: float) -> None:
        self.raw_state = "open"
        self.opened_at = now
        self.probe_started_at = None
        self.times_opened += 1
