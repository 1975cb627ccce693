"""Config models for the `models:`, `routes:` and `routing:` sections: what the router works over.

A route is a union tagged on `strategy` (a route without one is `fallback`):

    fallback                  candidates in the order given
    weighted                  a weighted draw (`weights`), optionally `sticky` per session
    cheapest_above_quality    cheapest estimated cost among candidates with quality >= `min_quality`
    best_quality_under_cost   best quality among candidates whose estimated cost <= `max_cost_usd`
    lowest_latency            lowest observed latency (time to first token for streams), exploring

`routing:` holds the rules (first match chooses a route or narrows candidates), the circuit
breaker and retry defaults, and the output-token guess used to cost a call without `max_tokens`.
`check_references` reports every name in these sections that points nowhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Capabilities(_Strict):
    """What a model can be asked for; a request needing a missing capability skips the model."""

    tools: bool = True
    vision: bool = True
    json_schema: bool = True
    streaming: bool = True


class ModelConfig(_Strict):
    """One model as the gateway offers it, bound to one provider."""

    provider: str
    upstream: str | None = Field(default=None, description="The provider's name for it; defaults to the key.")
    kind: Literal["chat", "embeddings"] = "chat"
    input_per_mtok: Decimal | None = Field(default=None, ge=0, description="USD per million input tokens.")
    output_per_mtok: Decimal | None = Field(default=None, ge=0, description="USD per million output tokens.")
    cached_input_per_mtok: Decimal | None = Field(
        default=None, ge=0, description="Cache reads; defaults to the input price."
    )
    cache_write_per_mtok: Decimal | None = Field(
        default=None, ge=0, description="Cache writes (Anthropic); defaults to the input price."
    )
    quality: float = Field(default=0.5, ge=0, le=1, description="The operator's own score, 0..1.")
    context_window: int | None = Field(default=None, gt=0, description="Prompt plus output tokens; None: unknown.")
    max_output_tokens: int | None = Field(default=None, gt=0)
    tokenizer: str | None = Field(default=None, description="tiktoken encoding name for estimates.")
    capabilities: Capabilities = Capabilities()
    fallbacks: list[str] = Field(
        default_factory=list, description="Models tried, in order, when this model is requested by name and fails."
    )
    response_model: Literal["requested", "upstream"] | None = Field(
        default=None,
        description="The `model` answers carry: the name the client requested, or the provider's own; "
        "defaults to routing.response_model.",
    )


def _as_text(value: Any) -> Any:
    """YAML reads `429` as a number; triggers are names."""
    if isinstance(value, list):
        return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return value


FallbackTrigger = Literal["429", "5xx", "timeout", "connect", "context_length"]
Triggers = Annotated[list[FallbackTrigger], BeforeValidator(_as_text)]
DEFAULT_TRIGGERS: tuple[FallbackTrigger, ...] = ("429", "5xx", "timeout", "connect")
RetryTrigger = Literal["429", "5xx", "timeout", "connect"]
RetryTriggers = Annotated[list[RetryTrigger], BeforeValidator(_as_text)]
RETRY_TRIGGERS: tuple[RetryTrigger, ...] = ("429", "5xx", "timeout", "connect")


class RetryConfig(_Strict):
    """How one call retries a target and moves along its targets.

    A failure whose kind is in `retry_on` is retried on the same target after a backoff with full
    jitter (`uniform(0, min(max_delay_s, base_delay_s * 2**(n-1)))`), or after the upstream's
    `retry-after` plus up to `base_delay_s` of jitter, until `max_attempts_per_target`. A 429 moves
    to the next target at once when there is one. No attempt starts after `max_attempts` attempts
    or `deadline_s` seconds from the first, and no retry waits past the deadline.
    """

    max_attempts_per_target: int = Field(
        default=1, ge=1, le=10, description="1: no retry on the same target (clients retry too); fallbacks still apply."
    )
    max_attempts: int = Field(default=10, ge=1, le=20, description="Attempts per call over all targets.")
    base_delay_s: float = Field(default=0.2, ge=0)
    max_delay_s: float = Field(default=5.0, ge=0)
    deadline_s: float | None = Field(default=60.0, gt=0, description="No attempt starts after this; None: no bound.")
    retry_on: RetryTriggers = Field(default_factory=lambda: list(RETRY_TRIGGERS))
    honour_retry_after: bool = True
    max_retry_after_s: float = Field(
        default=30.0, ge=0, description="A longer upstream retry-after moves on instead of waiting."
    )


class BreakerConfig(_Strict):
    """The per-target circuit breaker: open after `failure_threshold` consecutive failures of the
    kinds in `count`; after `cooldown_s` let one probe through (half-open); close on its success,
    re-open on its failure. A probe that never reports frees its slot after `probe_timeout_s`."""

    failure_threshold: int = Field(default=5, ge=1)
    cooldown_s: float = Field(default=30.0, gt=0)
    probe_timeout_s: float = Field(default=120.0, gt=0)
    count: Triggers = Field(default_factory=lambda: list(DEFAULT_TRIGGERS))


class DowngradeConfig(_Strict):
    """Cheaper candidates for a caller close to its budget cap: used, in the order given, when the
    remaining budget for the period is below either threshold (an unknown remaining never is)."""

    when_remaining_usd_below: float | None = Field(default=None, gt=0)
    when_remaining_fraction_below: float | None = Field(default=None, gt=0, le=1)
    candidates: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_threshold(self) -> DowngradeConfig:
        if self.when_remaining_usd_below is None and self.when_remaining_fraction_below is None:
            raise ValueError("give when_remaining_usd_below or when_remaining_fraction_below")
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError("candidates must not repeat a model")
        return self


class _RouteBase(_Strict):
    candidates: list[str] = Field(min_length=1)
    fallback_on: Triggers = Field(default_factory=lambda: list(DEFAULT_TRIGGERS))
    retry: RetryConfig | None = Field(default=None, description="Overrides routing.retry for this route.")
    downgrade: DowngradeConfig | None = None

    @model_validator(mode="after")
    def _unique_candidates(self) -> _RouteBase:
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError("candidates must not repeat a model")
        return self


class FallbackRoute(_RouteBase):
    """Try the candidates in the order given."""

    strategy: Literal["fallback"] = "fallback"


class WeightedRoute(_RouteBase):
    """Split calls by weight (canaries, A/B tests). The first target is drawn with probability
    weight / total; the others follow as a weighted draw without replacement (weight 0: fallback
    only). `sticky` keeps one session (X-Session-Id) on one model by a stable hash."""

    strategy: Literal["weighted"]
    weights: dict[str, float] = Field(min_length=1)
    sticky: bool = False

    @model_validator(mode="before")
    @classmethod
    def _candidates_from_weights(cls, data: Any) -> Any:
        if isinstance(data, dict) and "candidates" not in data and isinstance(data.get("weights"), dict):
            return {**data, "candidates": list(data["weights"])}
        return data

    @model_validator(mode="after")
    def _weights_cover_candidates(self) -> WeightedRoute:
        if set(self.weights) != set(self.candidates):
            raise ValueError("weights must name exactly the candidates")
        if any(w < 0 for w in self.weights.values()) or not any(w > 0 for w in self.weights.values()):
            raise ValueError("weights must be >= 0 with at least one above 0")
        return self


class CheapestAboveQualityRoute(_RouteBase):
    """The cheapest candidate with quality >= `min_quality` for this call's estimated tokens; the
    other qualifying ones follow in cost order. Candidates below the floor are skipped, or tried
    last (cost order) with `below_quality_fallback: true`."""

    strategy: Literal["cheapest_above_quality"]
    min_quality: float = Field(ge=0, le=1)
    below_quality_fallback: bool = False
    expected_output_tokens: int | None = Field(default=None, gt=0, description="Overrides the routing default.")


class BestQualityUnderCostRoute(_RouteBase):
    """The best-quality candidate whose estimated cost for this call is <= `max_cost_usd`; ties go
    to the cheaper; the others under the cap follow in that order."""

    strategy: Literal["best_quality_under_cost"]
    max_cost_usd: float = Field(gt=0)
    expected_output_tokens: int | None = Field(default=None, gt=0, description="Overrides the routing default.")


class LowestLatencyRoute(_RouteBase):
    """Lowest EWMA latency first (time to first token for streams); unmeasured candidates first,
    candidates failing right now last. With probability `epsilon` a random candidate goes first,
    and a candidate not observed for `probe_after_s` gets the next call, so recovery is noticed."""

    strategy: Literal["lowest_latency"]
    epsilon: float = Field(default=0.05, ge=0, le=1)
    probe_after_s: float | None = Field(default=60.0, gt=0)


def _strategy_of(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("strategy", "fallback"))
    return str(getattr(value, "strategy", "fallback"))


RouteConfig = Annotated[
    Annotated[FallbackRoute, Tag("fallback")]
    | Annotated[WeightedRoute, Tag("weighted")]
    | Annotated[CheapestAboveQualityRoute, Tag("cheapest_above_quality")]
    | Annotated[BestQualityUnderCostRoute, Tag("best_quality_under_cost")]
    | Annotated[LowestLatencyRoute, Tag("lowest_latency")],
    Discriminator(_strategy_of),
]
"""A named route: clients send its name as `model` and the router picks the targets."""

Strings = str | list[str]


class TokenRange(_Strict):
    """Estimated prompt tokens strictly greater than `gt` and/or strictly less than `lt`."""

    gt: int | None = Field(default=None, ge=0)
    lt: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _some_bound(self) -> TokenRange:
        if self.gt is None and self.lt is None:
            raise ValueError("give gt and/or lt")
        return self


class RuleMatch(_Strict):
    """What a rule matches; every given condition must hold. Strings are globs (`*`, `?`, `[..]`),
    a list matches any of its entries. Header names are matched case-insensitively."""

    model: Strings | None = Field(default=None, description="The model or route the client asked for.")
    team: Strings | None = None
    agent: Strings | None = None
    task: Strings | None = None
    tags: dict[str, str] = Field(default_factory=dict, description="k: glob; every one must be present and match.")
    headers: dict[str, str] = Field(default_factory=dict, description="name: glob; every one must match.")
    prompt_tokens: TokenRange | None = None
    has_tools: bool | None = None


class RuleConfig(_Strict):
    """When `match` holds, use `route` instead of what was asked for, or keep only `candidates`."""

    name: str | None = Field(default=None, description="Shown in spans and plans; defaults to rules.<index>.")
    match: RuleMatch = RuleMatch()
    route: str | None = None
    candidates: list[str] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_action(self) -> RuleConfig:
        if (self.route is None) == (self.candidates is None):
            raise ValueError("give exactly one of route or candidates")
        return self


class RoutingConfig(_Strict):
    """The top-level `routing:` section."""

    rules: list[RuleConfig] = Field(default_factory=list, description="First match wins, in this order.")
    breaker: BreakerConfig = BreakerConfig()
    retry: RetryConfig = RetryConfig()
    default_output_tokens: int = Field(
        default=1024, gt=0, description="Output tokens assumed when costing a call without max_tokens."
    )
    response_model: Literal["requested", "upstream"] = Field(
        default="requested",
        description="The `model` answers carry: the name the client requested (clients such as autogen and "
        "litellm look it up), or the provider's own (x-agentgw-model always names the answering model).",
    )
    latency_ewma_alpha: float = Field(default=0.3, gt=0, le=1, description="Weight of the newest observation.")
    latency_half_life_s: float = Field(
        default=10.0, gt=0, description="An older latency average loses half its weight per this many seconds."
    )


def check_references(
    models: Mapping[str, ModelConfig], routes: Mapping[str, RouteConfig], routing: RoutingConfig
) -> list[str]:
    """Every reference in these sections to a model or route that does not exist, one line each
    with its config path (the root config's validator reports them)."""
    problems: list[str] = []

    def model(path: str, name: str, kind: str | None = None) -> None:
        if name not in models:
            problems.append(f"{path}: unknown model '{name}'")
        elif kind is not None and models[name].kind != kind:
            problems.append(f"{path}: '{name}' serves {models[name].kind}, not {kind}")

    for name, spec in models.items():
        for i, other in enumerate(spec.fallbacks):
            model(f"models.{name}.fallbacks.{i}", other, spec.kind)
    for name, route in routes.items():
        kind = models[route.candidates[0]].kind if route.candidates[0] in models else None
        for i, candidate in enumerate(route.candidates):
            model(f"routes.{name}.candidates.{i}", candidate, kind)
        if route.downgrade is not None:
            for i, candidate in enumerate(route.downgrade.candidates):
                model(f"routes.{name}.downgrade.candidates.{i}", candidate, kind)
    for i, rule in enumerate(routing.rules):
        if rule.route is not None and rule.route not in routes:
            problems.append(f"routing.rules.{i}.route: unknown route '{rule.route}'")
        for j, candidate in enumerate(rule.candidates or ()):
            if candidate not in models:
                problems.append(f"routing.rules.{i}.candidates.{j}: unknown model '{candidate}'")
    return problems
