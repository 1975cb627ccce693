"""Settlements batched across calls: the `finish` of every call that ends while another batch is on its
way to the store goes in the next batch, one round trip for all of them (a pipeline on Redis).

A quiet gateway sends each settlement alone and at once; a busy one sends one batch per round trip,
however many calls end meanwhile (group commit). A settlement the store cannot take is queued on the
`RetryQueue` when retrying it is safe (`Exit.retriable`: it holds a lease or money, so a second copy
after a lost reply changes nothing), else counted as lost (a token correction alone: the estimate
stands).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from policies.state.base import Crossed, Exit, StateStore
from policies.state.errors import StoreUnavailable
from policies.state.retries import RetryQueue

MAX_BATCH = 256  # settlements per round trip: a pipeline this long is a few hundred microseconds of Redis time

LateCrossed = Callable[[Crossed], None]


def kinds_of(exit: Exit) -> tuple[str, ...]:
    """The retry queue's labels for a settlement: the parts it would leave undone if lost."""
    kinds = ("budget",) if exit.accounts else ()
    return (*kinds, "lease") if exit.lease_keys else kinds or ("tokens",)


class Settler:
    """Sends `finish` for many calls at once (see the module docstring)."""

    def __init__(
        self, store: StateStore, retries: RetryQueue, *, window_ms: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._retries = retries
        self._window_ms = window_ms
        self._clock = clock
        self._queue: deque[tuple[Exit, asyncio.Future[Crossed], LateCrossed | None]] = deque()
        self._sending = False
        self.batches = 0
        """Round trips made (for the benchmarks: settlements per round trip)."""

    async def finish(self, exit: Exit, on_late: LateCrossed | None = None) -> Crossed:
        """Settle one call; returns the alert levels its spend reached. Never raises for the store: a
        settlement it cannot take now is retried (its alerts then go to `on_late`) or counted as lost."""
        if not self._store.parallel:  # in memory: nothing to batch, nothing can fail
            return await self._store.finish(exit, int(self._clock() * 1000), self._window_ms)
        future: asyncio.Future[Crossed] = asyncio.get_running_loop().create_future()
        self._queue.append((exit, future, on_late))
        if not self._sending:
            self._sending = True
            try:
                while self._queue:
                    await self._send()
            finally:
                self._sending = False
        return await future

    async def _send(self) -> None:
        batch = [self._queue.popleft() for _ in range(min(MAX_BATCH, len(self._queue)))]
        try:
            exits = [exit for exit, _, _ in batch]
            results = await self._store.finish_many(exits, int(self._clock() * 1000), self._window_ms)
        except BaseException as exc:  # cancelled mid-flight (shutdown), or a bug: nobody waits for ever
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc if isinstance(exc, Exception) else StoreUnavailable("cancelled"))
            raise
        self.batches += 1
        for (exit, future, on_late), result in zip(batch, results, strict=True):
            if isinstance(result, StoreUnavailable):
                self._defer(exit, result, on_late)
                result = []
            if not future.done():
                future.set_result(result)

    def _defer(self, exit: Exit, error: StoreUnavailable, on_late: LateCrossed | None) -> None:
        if exit.retriable:
            self._retries.add(_Finish(self, exit, on_late), error)
            return
        self._retries.lose("tokens", f"a rate-limit token correction ({error})")


class _Finish:
    """A settlement to retry (idempotent: see `Exit`)."""

    __slots__ = ("_exit", "_on_late", "_settler", "kind", "kinds")

    def __init__(self, settler: Settler, exit: Exit, on_late: LateCrossed | None) -> None:
        self._settler = settler
        self._exit = exit
        self._on_late = on_late
        self.kinds = kinds_of(exit)
        self.kind = self.kinds[0]

    async def attempt(self) -> None:
        settler = self._settler
        crossed = await settler._store.finish(self._exit, int(settler._clock() * 1000), settler._window_ms)
        if crossed and self._on_late is not None:
            self._on_late(crossed)
