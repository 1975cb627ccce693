"""Graceful shutdown of the calls in flight.

On SIGTERM the server stops accepting connections and waits up to `server.graceful_shutdown_seconds`
for the calls in flight to finish. Calls still running shortly before that grace runs out are cut
by the gateway itself, not by the server: a stream ends with its API's error events, a whole call
answers 503 in its API's shape, and the ledger records the call with outcome `shutdown`. (Left to
the server, they would be cancelled mid-write: a stream cut without an error event, a call answered
with a plain-text 500, both recorded as if the client had gone away.)

Each running call registers its task here; the cost is a dictionary entry per call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("agentgw")

MESSAGE = "The gateway is shutting down and cut this call before it finished; send it again."
MARGIN_S = 2.0  # cut this long before the server's own deadline, so the error can still be written


class Shutdown:
    """The process's shutdown: `begin` it with the server's grace; calls still tracked when it runs
    out are cut (their tasks cancelled, with `cutting` set so they know why)."""

    def __init__(self) -> None:
        self.cutting = False
        self._tasks: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def track(self, task: asyncio.Task[object] | None) -> Callable[[], None]:
        """Register a call's task until the returned function is called."""
        if task is None:
            return _nothing
        self._tasks.add(task)
        return lambda: self._tasks.discard(task)

    def begin(self, grace_s: float | None) -> None:
        """The server stopped accepting calls and allows `grace_s` seconds (None: unbounded) for
        those in flight: cut what is left a little before that."""
        if grace_s is None or self._timer is not None:
            return
        delay = max(0.0, grace_s - min(MARGIN_S, grace_s / 10))
        self._timer = asyncio.get_running_loop().call_later(delay, self.cut)

    def cut(self) -> None:
        self.cutting = True
        if self._tasks:
            log.warning("graceful shutdown: cutting %d call(s) still running", len(self._tasks))
        for task in list(self._tasks):
            task.cancel(msg="agentgw shutdown")

    def was_cut(self) -> bool:
        """Inside a call's `except CancelledError`: whether the gateway's shutdown cut it (the
        cancellation is then withdrawn so the call can still answer)."""
        task = asyncio.current_task()
        if not self.cutting or task is None or task not in self._tasks:
            return False
        task.uncancel()
        return True


def _nothing() -> None:
    return None
