"""What the gateway does when the state store is unreachable: one decision, in one place, counted."""

from __future__ import annotations

import logging
import time
from typing import Literal

from policies.state.errors import StoreUnavailable

log = logging.getLogger("agentgw.state")

_LOG_EVERY = 10.0  # seconds between repeated log lines during an outage


class StoreFailurePolicy:
    """`on_store_error` from config, applied.

    On `StoreUnavailable` from an admission (rate limits or budget reservation), the gateway asks
    `admit_anyway(error)`: True (fail_open) means serve the call without limits or budget for it (the
    ledger still records it); False (fail_closed) means answer 503. Both are counted
    (`admitted_open`, `refused_closed`), and /metrics exports them as `agentgw_store_failures_total`.
    """

    def __init__(self, mode: Literal["fail_open", "fail_closed"]) -> None:
        self.mode = mode
        self.admitted_open = 0
        self.refused_closed = 0
        self._logged_at = 0.0

    @property
    def fails_open(self) -> bool:
        return self.mode == "fail_open"

    def admit_anyway(self, error: StoreUnavailable) -> bool:
        """Count the failure, log it now and then, and say whether to serve the call anyway."""
        if self.fails_open:
            self.admitted_open += 1
        else:
            self.refused_closed += 1
        now = time.monotonic()
        if now - self._logged_at >= _LOG_EVERY:
            self._logged_at = now
            action = "serving calls without limits and budgets" if self.fails_open else "refusing calls (503)"
            log.warning("%s; %s (%d served, %d refused so far)", error, action, self.admitted_open, self.refused_closed)
        return self.fails_open
