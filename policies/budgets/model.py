"""Budgets as plain values: what applies to a call, what the endpoint shows, what an alert says."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from policies.budgets.periods import Window
from policies.config import NANOS_PER_USD, Period
from policies.state.scope import Scope


def usd(nanos: int) -> float:
    """Nano-dollars as a USD number for JSON (exact for any realistic amount)."""
    return float(Decimal(nanos) / NANOS_PER_USD)


def usd_text(nanos: int) -> str:
    """Nano-dollars for people: two decimals, and as many more as the amount needs (up to nine, so
    it is exact): `$1.00`, `$0.005`, `$0.0098`, never a sub-cent cap shown as `$0.00`."""
    whole, _, fraction = f"{Decimal(nanos) / NANOS_PER_USD:.9f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"


def utc_moment(unix: int | None) -> datetime | None:
    return None if unix is None else datetime.fromtimestamp(unix, UTC)


@dataclass(frozen=True, slots=True)
class Budget:
    """A cap (integer nano-dollars) on a scope's spend per period, with soft alert thresholds (fractions)."""

    scope: Scope
    cap: int
    period: Period
    alert_thresholds: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budget's state in its current window, for `GET /v1/budgets`. Amounts in nano-dollars."""

    scope: Scope
    period: Period
    cap: int
    spent: int
    reserved: int
    remaining: int
    window_start: datetime | None
    resets_at: datetime | None

    @classmethod
    def of(cls, budget: Budget, window: Window, spent: int, reserved: int) -> BudgetStatus:
        return cls(
            budget.scope,
            budget.period,
            budget.cap,
            spent,
            reserved,
            max(0, budget.cap - spent - reserved),
            utc_moment(window.start),
            utc_moment(window.end),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON shape: the scope, USD amounts, ISO times (null for `total`)."""
        return {
            "scope": self.scope.as_dict(),
            "period": self.period,
            "cap_usd": usd(self.cap),
            "spent_usd": usd(self.spent),
            "reserved_usd": usd(self.reserved),
            "remaining_usd": usd(self.remaining),
            "period_start": self.window_start.isoformat() if self.window_start else None,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
        }


@dataclass(frozen=True, slots=True)
class ThresholdCrossing:
    """A budget's spend reached `threshold` x cap for the first time in its window (reported exactly once,
    across replicas). The gateway delivers it, off the request path."""

    scope: Scope
    period: Period
    threshold: float
    cap: int
    spent: int
    window_start: datetime | None
    resets_at: datetime | None

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON body."""
        return {
            "type": "budget.threshold_crossed",
            "scope": self.scope.as_dict(),
            "period": self.period,
            "threshold": self.threshold,
            "cap_usd": usd(self.cap),
            "spent_usd": usd(self.spent),
            "period_start": self.window_start.isoformat() if self.window_start else None,
            "resets_at": self.resets_at.isoformat() if self.resets_at else None,
        }
