"""Writes to the state store that must land, retried until the store takes them.

A budget settlement lost to a stalled store would leave its hold to lapse (money held for nothing
for 15 minutes) and its spend uncounted, so the cap could later be overrun. Every write queued here
is idempotent (a settle consumes its hold, so a second one, say after a reply lost in the stall,
finds none and changes nothing; a lease release removes a member), so it is simply tried again, with
exponential backoff and jitter, until it lands.

One worker task serves the whole queue, a batch at a time, and exits when the queue is empty: a
healthy gateway runs none. The queue is bounded: past `max_pending` the oldest write is dropped and
counted as lost (its hold then lapses by itself; the ledger still has the call's cost). `drain()` at
shutdown retries what is left for a bounded time. `deferred`, `landed` and `lost` count writes by
kind for /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from policies.state.errors import StoreUnavailable

log = logging.getLogger("agentgw.state")

MAX_PENDING = 100_000  # a few hundred bytes each: tens of MB at most, about 100 s of a busy gateway's calls
BATCH = 64
_LOG_EVERY = 10.0  # seconds between log lines during an outage


class Retryable(Protocol):
    """One idempotent write: `attempt()` raises StoreUnavailable while the store cannot take it."""

    kind: str  # what it settles, a metrics label: budget, cancel, lease, tokens

    async def attempt(self) -> None: ...


def kinds_of(write: Retryable) -> tuple[str, ...]:
    """The labels a write counts under: one settlement may carry several parts (a budget settle and a lease
    release together) and counts once under each."""
    kinds: tuple[str, ...] | None = getattr(write, "kinds", None)
    return kinds if kinds else (write.kind,)


class RetryQueue:
    """Failed idempotent writes, retried with backoff until they land (see the module docstring)."""

    def __init__(
        self,
        *,
        max_pending: int = MAX_PENDING,
        first_delay: float = 0.05,
        max_delay: float = 5.0,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._max = max_pending
        self._first = first_delay
        self._max_delay = max_delay
        self._jitter = jitter
        self._queue: deque[Retryable] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._logged_at = -_LOG_EVERY
        self._trying = 0
        self.deferred: dict[str, int] = {}
        """Writes that failed once and were queued, by kind."""
        self.landed: dict[str, int] = {}
        """Queued writes that landed on a retry, by kind."""
        self.lost: dict[str, int] = {}
        """Writes given up on (queue full, shutdown, or a part that cannot be retried), by kind."""

    @property
    def pending(self) -> int:
        """Writes not landed yet (queued, or being tried now)."""
        return len(self._queue) + self._trying

    def add(self, write: Retryable, why: object = None) -> None:
        """Queue a write that failed (`why`: its error, for the log); the worker retries it. Call from
        the event loop."""
        if len(self._queue) >= self._max:
            dropped = self._queue.popleft()
            for kind in kinds_of(dropped):
                self.lose(kind, "the retry queue is full")
        self._queue.append(write)
        for kind in kinds_of(write):
            _count(self.deferred, kind)
        waiting = len(self._queue)
        self._log("state store: %d settlement(s) waiting to be retried (this one: %s)", waiting, why or "failed")
        worker = self._worker
        if worker is None or worker.done() or worker.get_loop() is not asyncio.get_running_loop():
            self._wake = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="state-retries")

    def lose(self, kind: str, why: str, count: int = 1) -> None:
        """Count writes given up on (and say why in the log)."""
        _count(self.lost, kind, count)
        self._log("state store: %s settlement(s) lost (%s so far): %s", kind, self.lost[kind], why)

    def _log(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY:
            self._logged_at = now
            log.warning(message, *args)

    async def _run(self) -> None:
        delay = self._first
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            self._trying = len(batch)
            try:
                results = await asyncio.gather(*(write.attempt() for write in batch), return_exceptions=True)
            except asyncio.CancelledError:  # drain() ran out of time: what is left is counted there
                self._queue.extendleft(reversed(batch))
                raise
            finally:
                self._trying = 0
            failed = []
            for write, result in zip(batch, results, strict=True):
                if result is None:
                    for kind in kinds_of(write):
                        _count(self.landed, kind)
                elif isinstance(result, Exception) and not isinstance(result, StoreUnavailable):
                    for kind in kinds_of(write):  # a bug, not the store: never lands
                        self.lose(kind, f"{type(result).__name__}: {result}")
                else:
                    failed.append(write)
            if not failed:
                delay = self._first
                continue
            self._queue.extendleft(reversed(failed))  # first in line again, in their order
            assert self._wake is not None
            with contextlib.suppress(TimeoutError):  # drain() wakes the worker early
                await asyncio.wait_for(self._wake.wait(), delay * (0.5 + self._jitter() / 2))
            delay = min(self._max_delay, delay * 2)

    async def drain(self, seconds: float) -> None:
        """Retry what is queued for up to `seconds`, at a quicker pace (shutdown); then count what is
        still there as lost."""
        worker = self._worker
        if self.pending and worker is not None and not worker.done():
            self._max_delay = min(self._max_delay, 0.25)
            if self._wake is not None:
                self._wake.set()
                self._wake = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(worker), seconds)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        left: dict[str, int] = {}
        while self._queue:
            for kind in kinds_of(self._queue.popleft()):
                _count(left, kind)
        for kind, count in left.items():
            self.lose(kind, "the gateway stopped before the state store took them", count)


def _count(counts: dict[str, int], kind: str, amount: int = 1) -> None:
    counts[kind] = counts.get(kind, 0) + amount
