"""Admission: rate limits and budgets for one call, held before it is forwarded and settled after.

Before forwarding, the call is counted against every rate limit that applies (team, agent, key,
per model) with its estimated tokens, and its worst-case cost is reserved against every budget that
applies (team, agent, key, task). After it ends, however it ends, the token counts are corrected to
the real usage and the reservation settled to the real cost; budget thresholds crossed for the first
time in their period are delivered to the alert webhook, off the request path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config import Config
from gateway.context import CallContext
from gateway.errors import BudgetExceeded, RateLimited, ServiceUnavailable
from gateway.metering.pricing import Price
from gateway.metering.usage import Usage
from gateway.upstream import Timeouts, UpstreamClient
from policies.budgets import Budget, BudgetEngine, ThresholdCrossing, call_budgets
from policies.budgets import BudgetExceeded as BudgetRefusal
from policies.calls import CallHold, CallPolicies, Exact
from policies.config import OnStoreError, SlicesConfig
from policies.limits import LimitRule, RateLimiter, limit_rules
from policies.limits import RateLimited as LimitRefusal
from policies.state import RetryQueue, StateStore, StoreFailurePolicy, StoreUnavailable
from routing import Plan, Target

log = logging.getLogger("agentgw.admission")

MAX_CACHED_RULES = 10_000


PromptCount = Callable[[Target], Awaitable[int | None]]
"""The exact prompt tokens of a call for one target (or that provider's documented bound), None when
the prompt cannot be counted exactly for it."""


class Demand:
    """The most a call may use, as admission sizes it: a cheap bound on its prompt tokens (worked out
    only when a limit or budget applies, once), its output cap over all answers (None: none given),
    how many answers it asks for, and how to count its prompt exactly for a target when the bound
    does not fit (`count`)."""

    __slots__ = ("_bound", "_prompt_tokens", "choices", "count", "max_output")

    def __init__(
        self, bound: Callable[[], int], max_output: int | None, choices: int = 1, count: PromptCount | None = None
    ) -> None:
        self._bound = bound
        self._prompt_tokens: int | None = None
        self.max_output = max_output
        self.choices = choices
        self.count = count

    @property
    def prompt_tokens(self) -> int:
        if self._prompt_tokens is None:
            self._prompt_tokens = self._bound()
        return self._prompt_tokens


@dataclass(slots=True)
class Held:
    """What an admitted call holds until it settles."""

    hold: CallHold = field(default_factory=CallHold.unlimited)
    headers: dict[str, str] = field(default_factory=dict)  # x-ratelimit-*
    budgets: tuple[Budget, ...] = ()
    holds: bool = False  # limits or budgets applied: there is something to settle
    plan: Plan | None = None  # the plan admitted, when a per-model limit took targets off it
    model: str | None = None  # the model whose per-model limits the admission counted
    attempts: dict[str, CallHold] = field(default_factory=dict)  # fallbacks' per-model limits, by model


class Policies:
    """The process's rate limiter, budget engine and store, the settlements waiting for the store, and
    what the store failing has cost (`failure`); `state:` changes take a restart, so they live here."""

    def __init__(
        self,
        store: StateStore,
        client: UpstreamClient,
        *,
        on_store_error: OnStoreError = "fail_closed",
        hold_seconds: float = 900.0,
        slices: SlicesConfig | None = None,
    ) -> None:
        self.store = store
        self.retries = RetryQueue()
        self.failure = StoreFailurePolicy(on_store_error)
        self.limiter = RateLimiter(store, lease_seconds=hold_seconds, retries=self.retries)
        self.budgets = BudgetEngine(store, reservation_seconds=hold_seconds, retries=self.retries)
        self.calls = CallPolicies(store, self.limiter, self.budgets, slices=slices)
        self.hold_seconds = hold_seconds
        self._client = client
        self._pending: set[asyncio.Task[None]] = set()

    async def drain(self, retry_seconds: float) -> None:
        """Graceful shutdown: wait for settlements and alert deliveries still running, retry for up to
        `retry_seconds` the settlements the store has not taken yet, then deliver their alerts."""
        await self._finish_pending()
        await self._give_back_slices()
        await self.retries.drain(retry_seconds)
        await self._finish_pending()

    async def _finish_pending(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def settled(self, seconds: float) -> None:
        """Wait (at most `seconds`) for the settlements running now: a caller reading its
        budgets right after its call sees that call's spend."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=seconds)
        await self._give_back_slices(seconds)

    async def _give_back_slices(self, seconds: float | None = None) -> None:
        if self.calls.slices is not None:
            await self.calls.slices.flush(seconds)

    def spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def deliver_alert(self, config: Config, crossing: ThresholdCrossing) -> None:
        alerts = config.budget_alerts
        if alerts is None or alerts.url is None:
            log.warning("budget threshold crossed (no alert webhook configured): %s", crossing.payload())
            return
        import orjson

        body = orjson.dumps(crossing.payload())
        headers = {"content-type": "application/json", **alerts.headers}
        timeouts = Timeouts(connect=alerts.timeout_seconds, read=alerts.timeout_seconds, total=alerts.timeout_seconds)
        try:
            response = await self._client.send("POST", alerts.url, headers=headers, body=body, timeouts=timeouts)
            await response.read(4096)
            if response.status >= 300:
                log.warning("budget alert webhook answered %d", response.status)
        except Exception as exc:  # a webhook that is down is logged, never raised
            log.warning("budget alert webhook failed: %s", type(exc).__name__)


class Gate:
    """Admission for one config: which rules and budgets apply to a caller, and the worst case."""

    def __init__(self, config: Config, policies: Policies, prices: Mapping[str, Price | None]) -> None:
        self.config = config
        self.policies = policies
        self._prices = prices
        self._failure = policies.failure
        self._rules: dict[tuple[str, str, str], tuple[LimitRule, ...]] = {}
        self._default_output = config.routing.default_output_tokens
        self._thresholds = tuple(config.budget_alerts.thresholds) if config.budget_alerts else ()
        self._keys = {key.name: key for key in config.keys}
        self._has_budgets = {key.name: _any_budget(config.teams.get(key.team), key) for key in config.keys}

    def rules_for(self, ctx: CallContext, model: str) -> tuple[LimitRule, ...]:
        # Callers choose agent names: they are part of the cache key only where agent limits exist.
        team = self.config.teams.get(ctx.team)
        agent = ctx.agent if team is not None and team.agent_limits is not None else ""
        key = (ctx.key_name, agent, model)
        found = self._rules.get(key)
        if found is None:
            if len(self._rules) >= MAX_CACHED_RULES:  # callers choose agent names: never grow without bound
                self._rules.clear()
            found = self._rules[key] = limit_rules(
                team=ctx.team,
                team_policies=self.config.teams.get(ctx.team),
                key=ctx.key_name,
                key_policies=self._key(ctx.key_name),
                agent=ctx.agent,
                model=model,
                pool_agents=ctx.principal.open_agent_names,
            )
        return found

    def budgets_for(self, ctx: CallContext) -> tuple[Budget, ...]:
        if not self._has_budgets.get(ctx.key_name, True):
            return ()
        return call_budgets(
            team=ctx.team,
            team_policies=self.config.teams.get(ctx.team),
            key=ctx.key_name,
            key_policies=self._key(ctx.key_name),
            agent=ctx.agent,
            task=ctx.task,
            default_thresholds=self._thresholds,
            pool_agents=ctx.principal.open_agent_names,
        )

    async def remaining(self, ctx: CallContext) -> tuple[float | None, float | None]:
        """The caller's tightest budget now: (USD left, fraction of the cap left); (None, None) when no
        budget applies or the store cannot say."""
        budgets = self.budgets_for(ctx)
        if not budgets:
            return None, None
        try:
            statuses = [await self.policies.budgets.status(budget) for budget in budgets]
        except StoreUnavailable:
            return None, None
        usd = min(s.remaining for s in statuses) / 1e9
        fraction = min((s.remaining / s.cap if s.cap else 0.0) for s in statuses)
        return usd, fraction

    def _key(self, name: str) -> Any:
        return self._keys.get(name)

    def worst_case(self, plan: Plan, prompt_tokens: int, max_output: int | None, choices: int) -> tuple[int, int]:
        """(tokens, nano-dollars): the most this call can use, over every target it may reach."""
        tokens = cost = 0
        for target in plan.targets:
            output = max_output or (target.spec.max_output_tokens or self._default_output) * choices
            tokens = max(tokens, prompt_tokens + output)
            price = self._prices.get(target.model)
            if price is not None:
                cost = max(cost, price.cost_nanos(Usage(prompt_tokens, output)))
        return tokens, cost

    def _exact(self, plan: Plan, demand: Demand) -> Exact | None:
        """The worst case again from exact prompt counts, for when the cheap bound does not fit."""
        count = demand.count
        if count is None:
            return None

        async def exact() -> tuple[int, int] | None:
            tokens = cost = 0
            counted = False
            for target in plan.targets:
                prompt = await count(target)
                if prompt is None:
                    prompt = demand.prompt_tokens  # no exact count for this target: its bound stands
                else:
                    counted = True
                output = demand.max_output or (target.spec.max_output_tokens or self._default_output) * demand.choices
                tokens = max(tokens, prompt + output)
                price = self._prices.get(target.model)
                if price is not None:
                    cost = max(cost, price.cost_nanos(Usage(prompt, output)))
            return (tokens, cost) if counted else None

        return exact

    def unheld(self, ctx: CallContext, plan: Plan) -> Held | None:
        """The admission of a call no limit or budget applies to (nothing to hold, no store step), or
        None when one does and `admit` must run."""
        model = plan.targets[0].model
        if self.rules_for(ctx, model) or self.budgets_for(ctx):
            return None
        return Held(model=model)

    async def admit(self, ctx: CallContext, plan: Plan, demand: Demand) -> Held:
        """Count the call against its limits and reserve its worst case, in one store step; 429 or 503
        when it may not go. A route's first target whose own per-model limit is full is skipped for the
        next one (the held plan says so); the call is refused only when no target has room."""
        narrowed: Plan | None = None
        while True:
            try:
                held = await self._admit(ctx, plan, demand)
            except RateLimited as refused:
                if refused.model != plan.targets[0].model or len(plan.targets) < 2:
                    raise
                plan = narrowed = plan.without_first(f"rate_limited: its {refused.limit} limit is full")
                continue
            held.plan = narrowed
            return held

    async def _admit(self, ctx: CallContext, plan: Plan, demand: Demand) -> Held:
        model = plan.targets[0].model
        rules = self.rules_for(ctx, model)
        budgets = self.budgets_for(ctx)
        held = Held(budgets=budgets, holds=bool(rules or budgets), model=model)
        if not held.holds:
            return held
        tokens, cost = self.worst_case(plan, demand.prompt_tokens, demand.max_output, demand.choices)
        return await self._take(held, rules, tokens, cost, self._exact(plan, demand))

    async def admit_tool(self, ctx: CallContext, cost_nanos: int) -> Held:
        """Admission of a tool call (MCP): it counts against the caller's request and concurrency limits
        (a tool call uses no tokens) and holds its price against every budget that applies, in one
        store step; 429 or 503 like a model call. Per-model limits do not apply."""
        rules = self.rules_for(ctx, "")
        budgets = self.budgets_for(ctx)
        held = Held(budgets=budgets, holds=bool(rules or budgets))
        if not held.holds:
            return held
        return await self._take(held, rules, 0, cost_nanos, None)

    async def _take(
        self, held: Held, rules: tuple[LimitRule, ...], tokens: int, cost: int, exact: Exact | None
    ) -> Held:
        budgets = held.budgets
        try:
            held.hold = await self.policies.calls.admit(rules, budgets, tokens, cost, exact)
        except LimitRefusal as refusal:
            raise _rate_limited(refusal) from None
        except BudgetRefusal as refusal:
            raise _budget_exceeded(refusal) from None
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return Held()
        held.headers = held.hold.headers.as_dict() if held.hold.headers else {}
        return held

    def _store_failed(self, exc: StoreUnavailable) -> None:
        if not self._failure.admit_anyway(exc):
            raise ServiceUnavailable(
                "The gateway's state store is unreachable, and its config refuses calls it cannot meter "
                "(state.on_store_error: fail_closed)."
            ) from None
        log.warning("state store unreachable; admitting without limits or budgets (fail_open): %s", exc)

    async def admit_attempt(self, ctx: CallContext, held: Held, target: Target, demand: Demand) -> bool:
        """Before a fallback attempt to a model other than the one admitted: count it against that
        model's own per-model limits (the call's other limits and budgets already hold it). False when
        one has no room: the attempt is skipped."""
        if target.model == held.model or target.model in held.attempts:
            return True
        rules = tuple(rule for rule in self.rules_for(ctx, target.model) if rule.scope.model == target.model)
        if not rules:
            return True
        output = demand.max_output or (target.spec.max_output_tokens or self._default_output) * demand.choices
        try:
            hold = await self.policies.calls.admit(rules, (), demand.prompt_tokens + output, 0)
        except LimitRefusal:
            return False
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return True
        held.attempts[target.model] = hold
        return True

    def settle(self, held: Held, cost_nanos: int, usage: Usage | None, model: str | None = None) -> None:
        """Correct limits and settle budgets to what the call really used, off the request path. `model`
        answered; a fallback attempt to another model used no tokens there."""
        if not held.holds and not held.attempts:
            return
        tokens = usage.total_tokens if usage is not None else 0
        self.policies.spawn(self._settle(held, cost_nanos, tokens, model))

    async def _settle(self, held: Held, cost_nanos: int, tokens: int, model: str | None) -> None:
        # Nothing here raises for the store: what it cannot take now is retried until it lands.
        settles: list[Awaitable[object]] = [self._settle_main(held, cost_nanos, tokens)]
        settles += [hold.settle(0, tokens if name == model else 0) for name, hold in held.attempts.items()]
        await asyncio.gather(*settles)

    async def _settle_main(self, held: Held, cost_nanos: int, tokens: int) -> None:
        crossings = await held.hold.settle(cost_nanos, tokens, on_late=self._alert_later)
        self._alert_later(crossings)  # delivered on their own: a slow webhook holds no settlement

    def _alert_later(self, crossings: tuple[ThresholdCrossing, ...]) -> None:
        """Thresholds reached by a settlement that landed on a retry: delivered like any other."""
        for crossing in crossings:
            self.policies.spawn(self.policies.deliver_alert(self.config, crossing))

    async def renew(self, held: Held) -> None:
        """Keep a long call's leases and budget hold (they lapse after `state.reservation_ttl_seconds`
        unless renewed); a store failure is logged: the next renewal tries again."""
        try:
            for hold in (held.hold, *held.attempts.values()):
                await hold.renew()
        except StoreUnavailable as exc:
            log.warning("could not renew a running call's leases and budget hold: %s", exc)


def _any_budget(team: Any, key: Any) -> bool:
    fields = ("budget", "agent_budget", "task_budget")
    return any(getattr(owner, name, None) is not None for owner in (team, key) for name in fields)


def _rate_limited(refusal: LimitRefusal) -> RateLimited:
    headers = refusal.headers.as_dict() if refusal.headers is not None else {}
    if refusal.never_fits:
        headers["x-should-retry"] = "false"
    scope = refusal.scope
    who = f"all agents of key '{scope.name}' together" if scope.kind == "key_agents" else f"{scope.kind} '{scope.name}'"
    return RateLimited(
        f"Rate limit reached: {refusal.limit} per {'call' if refusal.limit == 'concurrent' else 'minute'} "
        f"for {who}"
        f"{f' on model {refusal.scope.model}' if refusal.scope.model else ''} ({refusal.value}).",
        retry_after=refusal.retry_after,
        headers=headers,
        limit=refusal.limit,
        model=refusal.scope.model,
    )


def _budget_exceeded(refusal: BudgetRefusal) -> BudgetExceeded:
    """429 budget_exceeded with x-should-retry: false; retry-after says when the period resets. A
    `total` budget never resets (only a person raising the cap helps): no retry-after at all."""
    resets = refusal.resets_at
    retry_after = max(1.0, resets.timestamp() - time.time()) if resets is not None else None
    return BudgetExceeded(f"The {refusal}.", retry_after=retry_after, scope=refusal.scope.kind)
