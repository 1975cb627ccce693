"""Retries and fallbacks for one call, as decisions: retry this target after a delay, move to the
next target now, or stop. Sleeping and sending are the caller's; the randomness and the clock are
injected, so every delay is reproducible under a seed."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from routing.config import RetryConfig

Action = Literal["retry", "next", "stop"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after a failed attempt. `delay_s` applies to `retry`; `reason` is for logs."""

    action: Action
    delay_s: float = 0.0
    reason: str = ""


class RetryPolicy:
    """A route's retry settings bound to the router's random source and clock."""

    __slots__ = ("clock", "config", "rng")

    def __init__(self, config: RetryConfig, rng: random.Random, clock: Callable[[], float]) -> None:
        self.config = config
        self.rng = rng
        self.clock = clock

    def backoff(self, retry: int) -> float:
        """Full jitter: uniform in [0, min(max_delay_s, base_delay_s * 2**(retry-1))], retry >= 1."""
        cap = min(self.config.max_delay_s, self.config.base_delay_s * 2 ** min(retry - 1, 32))
        return self.rng.uniform(0.0, cap)

    def delay(self, retry: int, retry_after_s: float | None) -> float | None:
        """The wait before retry number `retry` on the same target: the upstream's retry-after plus
        a little jitter when given and honoured, else the backoff; None when retry-after asks for
        longer than `max_retry_after_s` (move on instead)."""
        config = self.config
        if retry_after_s is not None and config.honour_retry_after:
            if retry_after_s > config.max_retry_after_s:
                return None
            return max(0.0, retry_after_s) + self.rng.uniform(0.0, config.base_delay_s)
        return self.backoff(retry)

    def start(self, fallback_on: frozenset[str]) -> CallAttempts:
        """The attempt bookkeeping for one call, started now."""
        return CallAttempts(self, fallback_on)


class CallAttempts:
    """One call's attempts against its plan's targets: counts them, keeps the deadline, and
    decides after each failure. Call `begin(target)` before each attempt."""

    __slots__ = ("_current", "_policy", "attempts", "fallback_on", "on_target", "started_at")

    def __init__(self, policy: RetryPolicy, fallback_on: frozenset[str]) -> None:
        self._policy = policy
        self.fallback_on = fallback_on
        self.started_at = policy.clock()
        self.attempts = 0  # over all targets
        self.on_target = 0  # on the current target
        self._current: object = None

    def elapsed_s(self) -> float:
        return self._policy.clock() - self.started_at

    def remaining_s(self) -> float | None:
        """Seconds left before the deadline (never below 0), or None without one; a caller may cap
        an attempt's timeout with it."""
        deadline = self._policy.config.deadline_s
        return None if deadline is None else max(0.0, deadline - self.elapsed_s())

    def can_start(self) -> bool:
        """Whether another attempt may start: under `max_attempts` and before the deadline."""
        config = self._policy.config
        if self.attempts >= config.max_attempts:
            return False
        return config.deadline_s is None or self.elapsed_s() < config.deadline_s

    def begin(self, target: object) -> None:
        """An attempt at `target` starts (the same target again counts as a retry)."""
        if target is not self._current:
            self._current = target
            self.on_target = 0
        self.attempts += 1
        self.on_target += 1

    def after_failure(self, kind: str, *, retry_after_s: float | None = None, has_next: bool = False) -> Decision:
        """What to do after the current attempt failed with `kind` (a fallback trigger: 429, 5xx,
        timeout, connect, context_length). `has_next`: the plan has a target after this one.

        Order of preference: a 429 with another target moves on at once; a kind in `retry_on`
        retries this target while under `max_attempts_per_target` and the wait ends before the
        deadline; a kind in the plan's `fallback_on` moves on; anything else stops."""
        policy = self._policy
        config = policy.config
        if self.attempts >= config.max_attempts:
            return Decision("stop", reason=f"{self.attempts} attempts made (max_attempts {config.max_attempts})")
        deadline = config.deadline_s
        elapsed = self.elapsed_s()
        if deadline is not None and elapsed >= deadline:
            return Decision("stop", reason=f"deadline of {deadline:g} s reached")
        can_move_on = has_next and kind in self.fallback_on
        if (
            kind in config.retry_on
            and self.on_target < config.max_attempts_per_target
            and not (kind == "429" and can_move_on)
        ):
            delay = policy.delay(self.on_target, retry_after_s)
            if delay is not None and (deadline is None or elapsed + delay < deadline):
                return Decision("retry", delay, f"{kind}: retry {self.on_target} on this target")
        if can_move_on:
            return Decision("next", reason=f"{kind}: falling back")
        if not has_next:
            return Decision("stop", reason=f"{kind}: no target left")
        return Decision("stop", reason=f"{kind} is not a fallback trigger for this route")
