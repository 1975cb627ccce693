"""Budgets in USD (integer nano-dollars) per team, agent, key and task, per day, week, month or in total.

budgets = call_budgets(team=..., team_policies=..., key=..., key_policies=..., agent=..., task=...)
reservation = await engine.reserve(budgets, worst_case_nanos)   # BudgetExceeded | StoreUnavailable
...
crossings = await reservation.settle(actual_nanos)              # or reservation.release()
"""

from policies.budgets.engine import BudgetEngine, Reservation
from policies.budgets.errors import BudgetExceeded
from policies.budgets.model import Budget, BudgetStatus, ThresholdCrossing, usd
from policies.budgets.periods import Window, window_of
from policies.budgets.plan import call_budgets

__all__ = [
    "Budget",
    "BudgetEngine",
    "BudgetExceeded",
    "BudgetStatus",
    "Reservation",
    "ThresholdCrossing",
    "Window",
    "call_budgets",
    "usd",
    "window_of",
]
