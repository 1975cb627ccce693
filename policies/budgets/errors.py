"""The budget engine's refusal."""

from __future__ import annotations

from datetime import datetime

from policies.budgets.model import usd_text
from policies.config import Period
from policies.state.scope import Scope


class BudgetExceeded(Exception):
    """The call's worst-case cost does not fit in a budget: answer 429 `budget_exceeded` with
    `x-should-retry: false`. Names the first budget without room. Amounts in nano-dollars."""

    def __init__(
        self,
        scope: Scope,
        period: Period,
        cap: int,
        spent: int,
        reserved: int,
        requested: int,
        resets_at: datetime | None,
    ) -> None:
        per = "total" if period == "total" else f"{period}ly".replace("dayly", "daily")
        super().__init__(
            f"{per} budget of {usd_text(cap)} for {scope} is exhausted "
            f"(spent {usd_text(spent)}, held for calls in flight {usd_text(reserved)}, "
            f"this call may cost up to {usd_text(requested)})"
        )
        self.scope = scope
        self.period = period
        self.cap = cap
        self.spent = spent
        self.reserved = reserved
        self.requested = requested
        self.resets_at = resets_at
