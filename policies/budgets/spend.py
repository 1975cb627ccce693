"""Where budgets learn what was spent when the state store does not know: the usage ledger.

The state store keeps budgets fast, but it can forget: a Redis restarted without persistence, a key
evicted, a failover to a replica that lagged, a gateway on memory state restarted, a `total` budget idle
longer than the store keeps it. The ledger records every admitted call's cost, so a budget whose
counters are missing is rebuilt from it (`BudgetEngine.rebuild`) before it admits anything.
"""

from __future__ import annotations

from typing import Protocol

from policies.state.scope import ScopeKind


class SpendLedger(Protocol):
    """The one question budgets ask of the ledger (SQLite today, PostgreSQL too): the sum of cost in
    nano-dollars of the calls of one scope since a moment (unix seconds; None: ever). Raises when the
    ledger cannot answer."""

    async def spent_nanos(self, team: str, kind: ScopeKind, name: str, since: float | None) -> int: ...
