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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.config import Config
from gateway.context import CallContext
from gateway.errors import BudgetExceeded, RateLimited, ServiceUnavailable
from gateway.metering.pricing import Price
from gateway.metering.usage import Usage
from gateway.upstream import Timeouts, UpstreamClient
from policies.budgets import Budget, BudgetEngine, Reservation, ThresholdCrossing, call_budgets
from policies.budgets import BudgetExceeded as BudgetRefusal
from policies.config import OnStoreError
from policies.limits import Admission, LimitRule, RateLimiter, limit_rules
from policies.limits import RateLimited as LimitRefusal
from policies.state import RetryQueue, StateStore, StoreFailurePolicy, StoreUnavailable
from routing import Plan

log = logging.getLogger("agentgw.admission")

MAX_CACHED_RULES = 10_000
SHUTDOWN_RETRY_SECONDS = 10.0  # how long shutdown keeps retrying settlements the store has not taken


@dataclass(frozen=True, slots=True)
class Demand:
    """The most a call may use, as admission sizes it: a bound on its prompt tokens (worked out only
    when a limit or budget applies), its output cap over all answers (None: none given) and how many
    answers it asks for."""

    prompt_bound: Callable[[], int]
    max_output: int | None
    choices: int = 1


@dataclass(slots=True)
class Held:
    """What an admitted call holds until it settles."""

    admission: Admission = field(default_factory=Admission.unlimited)
    reservation: Reservation = field(default_factory=Reservation.unlimited)
    headers: dict[str, str] = field(default_factory=dict)  # x-ratelimit-*
    budgets: tuple[Budget, ...] = ()
    holds: bool = False  # limits or budgets applied: there is something to settle
    plan: Plan | None = None  # the plan admitted, when a per-model limit took targets off it


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
    ) -> None:
        self.store = store
        self.retries = RetryQueue()
        self.failure = StoreFailurePolicy(on_store_error)
        self.limiter = RateLimiter(store, lease_seconds=hold_seconds, retries=self.retries)
        self.budgets = BudgetEngine(store, reservation_seconds=hold_seconds, retries=self.retries)
        self._client = client
        self._pending: set[asyncio.Task[None]] = set()

    async def drain(self, retry_seconds: float = SHUTDOWN_RETRY_SECONDS) -> None:
        """Graceful shutdown: wait for settlements and alert deliveries still running, retry for up to
        `retry_seconds` the settlements the store has not taken yet, then deliver their alerts."""
        await self._finish_pending()
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

    async def admit(self, ctx: CallContext, plan: Plan, demand: Demand) -> Held:
        """Count the call against its limits and reserve its worst case; 429 or 503 when it may not go.
        A route's first target whose own per-model limit is full is skipped for the next one (the
        held plan says so); the call is refused only when no target has room."""
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
        rules = self.rules_for(ctx, plan.targets[0].model)
        budgets = self.budgets_for(ctx)
        held = Held(budgets=budgets, holds=bool(rules or budgets))
        if not held.holds:
            return held
        tokens, cost = self.worst_case(plan, demand.prompt_bound(), demand.max_output, demand.choices)
        try:
            if rules and budgets and self.policies.store.parallel:
                held.admission, held.reservation = await self._both(rules, tokens, budgets, cost)
            else:
                if rules:
                    held.admission = await self.policies.limiter.admit(rules, tokens)
                if budgets:
                    held.reservation = await self.policies.budgets.reserve(budgets, cost)
            held.headers = held.admission.headers.as_dict() if held.admission.headers else {}
        except LimitRefusal as refusal:
            raise _rate_limited(refusal) from None
        except BudgetRefusal as refusal:
            await held.admission.cancel()  # a refused call uses up nothing: its rate-limit hit is taken back
            raise _budget_exceeded(refusal) from None
        except StoreUnavailable as exc:
            await held.admission.release()
            if not self._failure.admit_anyway(exc):
                raise ServiceUnavailable(
                    "The gateway's state store is unreachable, and its config refuses calls it cannot meter "
                    "(state.on_store_error: fail_closed)."
                ) from None
            log.warning("state store unreachable; admitting without limits or budgets (fail_open): %s", exc)
            return Held()
        return held

    async def _both(
        self, rules: tuple[LimitRule, ...], tokens: int, budgets: tuple[Budget, ...], cost: int
    ) -> tuple[Admission, Reservation]:
        """Limits and budgets in one round trip's time (a networked store); whichever holds is let go
        when the other refuses."""
        admission, reservation = await asyncio.gather(
            self.policies.limiter.admit(rules, tokens),
            self.policies.budgets.reserve(budgets, cost),
            return_exceptions=True,
        )
        if isinstance(admission, Admission) and isinstance(reservation, Reservation):
            return admission, reservation
        if isinstance(admission, Admission):
            await admission.cancel()
        if isinstance(reservation, Reservation):
            await reservation.release()
        raise admission if isinstance(admission, BaseException) else reservation  # type: ignore[misc]

    def settle(self, held: Held, cost_nanos: int, usage: Usage | None) -> None:
        """Correct limits and settle budgets to what the call really used, off the request path."""
        if not held.holds:
            return
        tokens = usage.total_tokens if usage is not None else 0
        self.policies.spawn(self._settle(held, cost_nanos, tokens))

    async def _settle(self, held: Held, cost_nanos: int, tokens: int) -> None:
        # Neither raises for the store: what it cannot take now is retried until it lands.
        crossings = await held.reservation.settle(cost_nanos, on_late=self._alert_later)
        await held.admission.settle(tokens)
        self._alert_later(crossings)  # delivered on their own: a slow webhook holds no settlement

    def _alert_later(self, crossings: tuple[ThresholdCrossing, ...]) -> None:
        """Thresholds reached by a settlement that landed on a retry: delivered like any other."""
        for crossing in crossings:
            self.policies.spawn(self.policies.deliver_alert(self.config, crossing))


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
