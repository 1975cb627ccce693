"""The one error routing raises: every candidate was skipped.

    NoTarget           category        suggested answer
      (every skip a breaker)      unavailable     503 service_unavailable, retry-after = retry_after_s
      (capability, size, cost)    invalid         400 invalid_request
      (only keys' permissions)    forbidden       403 permission_denied
      (wrong operation)           wrong_kind      400 invalid_request (param: model)

With mixed reasons the most hopeful category wins, in the order above: a request that some
candidate could serve once its breaker closes is `unavailable`, not `forbidden`. An unknown name
is not an error here: `Router.plan` returns None (404).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Category = Literal["unavailable", "invalid", "forbidden", "wrong_kind"]

_CATEGORY_OF: dict[str, Category] = {
    "circuit_open": "unavailable",
    "not_allowed": "forbidden",
    "kind": "wrong_kind",
}
_PRIORITY: tuple[Category, ...] = ("unavailable", "invalid", "forbidden", "wrong_kind")
_STATUS: dict[Category, int] = {"unavailable": 503, "invalid": 400, "forbidden": 403, "wrong_kind": 400}


def reason_code(reason: str) -> str:
    """The stable code a skip reason starts with: `circuit_open`, `not_allowed`, `capability`,
    `context_window`, `max_output_tokens`, `below_min_quality`, `over_max_cost`,
    `excluded_by_rule`, `kind`, `downgraded` (left out for the route's budget downgrade)."""
    return reason.partition(":")[0]


class NoTarget(Exception):
    """No candidate can serve the call; `considered` says why each was skipped."""

    def __init__(
        self,
        requested: str,
        route: str | None,
        considered: Sequence[tuple[str, str | None]],
        retry_after_s: float | None = None,
    ) -> None:
        self.requested = requested
        self.route = route
        self.considered = tuple(considered)
        self.retry_after_s = retry_after_s
        codes = {reason_code(r) for _, r in self.considered if r is not None} - {"downgraded"}
        categories = {_CATEGORY_OF.get(code, "invalid") for code in codes}
        self.category: Category = next((c for c in _PRIORITY if c in categories), "invalid")
        reasons = "; ".join(f"{model}: {reason}" for model, reason in self.considered)
        super().__init__(f"No model can serve this request for '{requested}' ({reasons or 'no candidates'}).")
        self.message = str(self)

    @property
    def status(self) -> int:
        """The HTTP status the category suggests: 503, 400 or 403."""
        return _STATUS[self.category]
