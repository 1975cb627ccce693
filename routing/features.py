"""What the router knows about one call: the gateway fills this in before routing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


@dataclass(slots=True, kw_only=True)  # not frozen: one per call, and frozen fields cost ~0.1 us each to set
class RequestFeatures:
    """The facts about a call that rules and strategies decide on.

    `allowed_models` are the concrete models this call may be sent to (see
    `Router.allowed_models`), None for no restriction. `headers` needs only the names in
    `Router.rule_headers`, lower-cased. The budget figures are the caller's tightest remaining
    budget for the period (None: unknown or unlimited; never triggers a downgrade).
    """

    requested_model: str
    operation: Literal["chat", "embeddings"] = "chat"  # the kind of model the call needs
    team: str | None = None
    agent: str | None = None
    task: str | None = None
    session: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    est_prompt_tokens: int = 0
    max_tokens: int | None = None
    needs_tools: bool = False
    needs_json_schema: bool = False
    needs_vision: bool = False
    stream: bool = False
    allowed_models: frozenset[str] | None = None
    budget_remaining_usd: float | None = None
    budget_fraction_remaining: float | None = None
    # The call's API (chat, responses, messages...) when it uses something only a provider speaking
    # that API itself can serve (`native_param`: stored state, a hosted tool); None otherwise.
    native_api: str | None = None
    native_param: str | None = None
