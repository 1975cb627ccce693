"""Helpers for the gateway's background threads (the ledger writer, the span exporter).

They share the event loop's core in a busy deployment; running them at a lower CPU priority lets
the loop preempt them, so their batches never stall requests for long.
"""

from __future__ import annotations

import contextlib
import os
import threading

BACKGROUND_NICENESS = 10  # still ~10% of a saturated core: enough to keep up, never enough to stall


def lower_thread_priority() -> None:
    """Lower the calling thread's CPU priority (Linux sets niceness per thread); elsewhere a no-op."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
