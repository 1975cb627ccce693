"""One call's rate limits and budgets together: admitted in one store step (one Lua script on Redis),
settled in one (sent with other calls' settlements in one round trip), renewed while the call runs.

    hold = await policies.admit(rules, budgets, tokens, cost, exact=count)   # RateLimited | BudgetExceeded
    ...                                                                       # | StoreUnavailable
    crossings = await hold.settle(actual_cost, actual_tokens)

Exact where it matters: `tokens` and `cost` may be a cheap bound on the call's prompt (about twice its
real size). With `exact`, the store answers "refine" instead of refusing when a token limit or a budget
has no room for the bound, and when a budget is near its cap (`NEAR_CAP`); then `exact()` counts the
prompt exactly and the call is tried once more with that. Far from every cap the cheap bound stands and
admission is one round trip, or none: on a shared store a busy call shape is admitted from a strict
local slice (`policies.slices`), which the store counted and held before.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

from policies.budgets.engine import BudgetEngine, remaining_after
from policies.budgets.model import Budget, ThresholdCrossing
from policies.budgets.periods import Window
from policies.config import SlicesConfig
from policies.limits.engine import LimitPlan, RateLimiter
from policies.limits.headers import RateLimitHeaders
from policies.limits.rules import LimitRule
from policies.slices import Slice, Slices
from policies.state.base import Account, Counter, Entry, Exit, StateStore, Verdict
from policies.state.errors import StoreUnavailable
from policies.state.settler import Settler

Exact = Callable[[], Awaitable[tuple[int, int] | None]]
"""The call's exact (tokens, nano-dollars) where its first amounts were a cheap bound; None when it
cannot be counted exactly (the bound stands)."""

LateCrossings = Callable[[tuple[ThresholdCrossing, ...]], None]


class CallPolicies:
    """Admission and settlement of whole calls over a rate limiter and a budget engine sharing a store."""

    def __init__(
        self,
        store: StateStore,
        limiter: RateLimiter,
        budgets: BudgetEngine,
        *,
        slices: SlicesConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`slices`: admit busy call shapes from strict local slices of a shared store (`policies.slices`);
        only where the store is shared over the network (on memory state every call is local anyway)."""
        self.store = store
        self.limiter = limiter
        self.budgets = budgets
        self.settler = Settler(store, budgets.retries, window_ms=limiter.window_ms, clock=clock)
        self._clock = clock
        self.slices = None
        if slices is not None and slices.enabled and store.parallel:
            self.slices = Slices(self, max_calls=slices.max_calls, max_age_ms=slices.max_age_ms)
        self.refined = 0
        """Admissions that counted their prompt exactly (the cheap bound did not fit, or a cap was near)."""

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def admit(
        self,
        rules: tuple[LimitRule, ...],
        budgets: Sequence[Budget],
        tokens: int,
        cost: int,
        exact: Exact | None = None,
    ) -> CallHold:
        """Count the call against every rule and hold `cost` on every budget, all or nothing, in one step.

        Raises RateLimited or BudgetExceeded for the first limit or budget without room (nothing is
        counted or held then), or StoreUnavailable."""
        plan = self.limiter.plan(rules)
        now = self._clock()
        kept, windows, accounts = self.budgets.accounts_for(budgets, now) if budgets else ([], [], [])
        if not plan.limits and not plan.leases and not accounts:
            return CallHold.unlimited()
        call_id = self.budgets.new_id()
        refine = exact is not None and bool(plan.tokens or accounts)
        tokens, cost = max(0, tokens), max(0, cost)
        entry = self._entry(plan, accounts, tokens, cost, call_id, refine)
        shape: tuple[object, ...] = ()
        if self.slices is not None:
            shape = (plan, *accounts)
            taken = await self.slices.take(shape, entry, kept, windows, self.now_ms())
            if taken is not None:
                return self._sliced(plan, entry, *taken, kept, windows)
        verdict = await self.ask(entry)
        for _ in range(4):  # at most: rebuild, refine, rebuild (another replica's expiry), and the last try
            if verdict.missing:  # lost, expired or new: rebuilt from the ledger before they admit anything
                for index in verdict.missing:
                    await self.budgets.rebuild(kept[index], windows[index], accounts[index])
            elif verdict.refine:
                assert exact is not None
                self.refined += 1
                refine = False
                counted = await exact()
                if counted is not None:
                    tokens, cost = max(0, counted[0]), max(0, counted[1])
            else:
                break
            entry = self._entry(plan, accounts, tokens, cost, call_id, refine)
            verdict = await self.ask(entry)
        refused = verdict.refused is not None or verdict.full is not None or verdict.short is not None
        if refused and self.slices is not None and await self.slices.give_up(shape):
            entry = self._entry(plan, accounts, tokens, cost, call_id, False)
            verdict = await self.ask(entry)  # with the room its slices held back
        if verdict.missing or verdict.refine:
            raise StoreUnavailable("the state store kept answering that budget accounts are missing")
        now_ms = self._now_ms
        if verdict.refused is not None:
            index = verdict.refused
            counters = [*entry.requests, *entry.tokens]
            raise self.limiter.refusal(plan.limits[index], counters[index].amount, verdict.counts[index], now_ms)
        if verdict.full is not None:
            raise self.limiter.concurrency_refusal(plan, verdict.full)
        if verdict.short is not None:
            raise self.budgets.refusal(kept, windows, verdict.short, cost)
        if self.slices is not None:
            self.slices.learn(shape, entry, verdict, now_ms)
        counters = [*entry.requests, *entry.tokens]
        headers = self.limiter.numbers(plan.limits, counters, verdict.counts, now_ms) if plan.limits else None
        return CallHold(
            self,
            Exit(
                lease_keys=plan.lease_keys,
                accounts=accounts,
                lease_member=entry.lease_member,
                hold_member=entry.hold_member,
                held=cost,
                hit_window=now_ms // self.limiter.window_ms,
                admitted_ms=now_ms,
            ),
            [Counter(limit.key, limit.value, tokens) for limit in plan.tokens],
            headers,
            kept,
            windows,
            verdict.used,
        )

    def _sliced(
        self, plan: LimitPlan, entry: Entry, s: Slice, verdict: Verdict, budgets: list[Budget], windows: list[Window]
    ) -> CallHold:
        now_ms = self.now_ms()
        counters = [*entry.requests, *entry.tokens]
        headers = self.limiter.numbers(plan.limits, counters, verdict.counts, now_ms) if plan.limits else None
        exit = Exit(lease_keys=plan.lease_keys, accounts=entry.accounts, held=entry.amount, admitted_ms=now_ms)
        return CallHold(self, exit, list(entry.tokens), headers, budgets, windows, verdict.used, s)

    def _entry(
        self, plan: LimitPlan, accounts: list[Account], tokens: int, cost: int, call_id: str, refine: bool
    ) -> Entry:
        return Entry(
            requests=plan.requests,
            tokens=[Counter(limit.key, limit.value, tokens) for limit in plan.tokens],
            leases=plan.leases,
            accounts=accounts,
            amount=cost,
            lease_member=call_id,
            hold_member=f"{call_id}|{cost}",
            refine=refine,
            rebuild=self.budgets.spend is not None,
        )

    async def ask(self, entry: Entry) -> Verdict:
        """The store's verdict on `entry`; a reservation whose reply was lost is cancelled once the store
        is back (it may land yet)."""
        now_ms = self._now_ms = int(self._clock() * 1000)
        deadline_ms = now_ms + self.budgets.hold_ms
        try:
            return await self.store.admit(entry, now_ms, self.limiter.window_ms, deadline_ms)
        except StoreUnavailable as exc:
            if exc.maybe_applied and entry.accounts:
                self.budgets.cancel_later(list(entry.accounts), entry.hold_member, entry.amount, deadline_ms)
            raise

    _now_ms = 0


class CallHold:
    """What an admitted call holds: its rate-limit hit, leases and budget hold, given back together.

    `settle(cost, tokens)` once the call's real cost and usage are known (or `release()` when it cost
    nothing); only the first has an effect, and neither raises for store failures (see `Settler`).
    `renew()` keeps the leases and hold of a call that runs longer than they last."""

    __slots__ = ("_budgets", "_exit", "_open", "_owner", "_slice", "_tokens", "_used", "_windows", "headers")

    def __init__(
        self,
        owner: CallPolicies | None,
        exit: Exit,
        tokens: list[Counter],
        headers: RateLimitHeaders | None,
        budgets: list[Budget],
        windows: list[Window],
        used: tuple[int, ...],
        slice: Slice | None = None,
    ) -> None:
        self._owner = owner
        self._slice = slice  # admitted from a local slice: settled into it
        self._exit = exit
        self._tokens = tokens  # the token limits and the estimate they were hit with
        self._budgets = budgets
        self._windows = windows
        self._used = used
        self._open = owner is not None
        self.headers = headers
        """x-ratelimit-* numbers after this call's hit, for the response (None when no limit applies)."""

    @classmethod
    def unlimited(cls) -> CallHold:
        """A hold on nothing: no limit or budget applied, or the store failed open (one shared
        instance: a hold without an owner has nothing to settle, renew or change)."""
        return _UNLIMITED

    @property
    def holds(self) -> bool:
        """Whether there is anything to settle or renew."""
        return self._owner is not None

    @property
    def amount(self) -> int:
        """The worst-case cost held, nano-dollars."""
        return self._exit.held

    def remaining_after(self, cost: int) -> dict[str, int]:
        """Per scope kind, the tightest budget's room once `cost` is spent (see `remaining_after`)."""
        return remaining_after(self._budgets, self._used, cost)

    async def settle(
        self, cost: int, tokens: int | None, on_late: LateCrossings | None = None
    ) -> tuple[ThresholdCrossing, ...]:
        """Give everything back: the hold replaced by the real cost (nano-dollars), the token estimate
        corrected to `tokens` (None: keep it), the leases released. Returns the alert thresholds the
        spend reached for the first time; if it lands later, on a retry, they go to `on_late`."""
        owner = self._owner
        if not self._open or owner is None:
            return ()
        self._open = False
        if self._slice is not None:
            assert owner.slices is not None
            corrected = [] if tokens is None else [max(0, tokens) - c.amount for c in self._tokens]
            owner.slices.end(self._slice, self._exit.held, max(0, cost), corrected, on_late)
            return ()  # the slice's thresholds go to `on_late` when it is given back
        corrections = []
        if tokens is not None:
            corrections = [Counter(c.key, c.limit, max(0, tokens) - c.amount) for c in self._tokens]
            corrections = [c for c in corrections if c.amount]
        base = self._exit
        exit = Exit(
            corrections, base.lease_keys, base.accounts, base.lease_member, base.hold_member, base.held,
            max(0, cost), base.hit_window, base.admitted_ms, int(owner._clock() * 1000),
        )  # fmt: skip

        def late(crossed: list[tuple[int, str, int]]) -> None:
            if on_late is not None:
                on_late(owner.budgets.crossings(self._budgets, self._windows, crossed))

        crossed = await owner.settler.finish(exit, late)
        return owner.budgets.crossings(self._budgets, self._windows, crossed) if crossed else ()

    async def release(self) -> None:
        """Give everything back; nothing was spent (token limits keep the estimate)."""
        await self.settle(0, None)

    async def renew(self) -> bool:
        """Push the leases' and the hold's deadline a full hold period on from now (a long stream calls
        this while it runs). False when there was nothing to renew, or it had lapsed; raises
        StoreUnavailable."""
        owner = self._owner
        if not self._open or owner is None or not (self._exit.lease_keys or self._exit.accounts):
            return False
        deadline_ms = int(owner._clock() * 1000) + owner.budgets.hold_ms
        if self._slice is not None:
            assert owner.slices is not None
            return await owner.slices.renew(self._slice, deadline_ms)
        return await owner.store.renew(self._exit, deadline_ms)


_UNLIMITED = CallHold(None, Exit(), [], None, [], [], ())
