"""Budget caps that hold under concurrency: reserve the worst case before the call, settle to the real
cost after.

`reserve` holds the call's worst-case cost on every budget that applies, all or nothing, in one atomic
store operation (one Lua script on Redis): a call fits only if `spent + reserved + cost <= cap` for each.
So however many calls run at once, on however many replicas, `spent + reserved` never passes a cap
(as long as real costs stay within their worst case). `settle` drops the hold and adds the real cost.

Stalls: a settle the store cannot take now is queued (`RetryQueue`) and retried with backoff until it
lands; a settle consumes its hold, so one retried after a lost reply changes nothing. A reservation
whose reply was lost is cancelled the same way, so if it landed after all it holds nothing for long.

Leaks: each hold carries a deadline (`reservation_seconds`). A hold still there after it, because its
process died or a path forgot to settle, is dropped by the next operation that reads the account, which
gives its amount back (and a settle that comes later still counts its spend).

Windows: the period window's label is part of the state key (`...:b:d20250114`), so a new period starts
at zero; old windows expire a day after they end, idle task budgets after `task_idle_seconds`.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import secrets
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import lru_cache

from policies.budgets.errors import BudgetExceeded
from policies.budgets.model import Budget, BudgetStatus, ThresholdCrossing, utc_moment
from policies.budgets.periods import Window, window_of
from policies.budgets.spend import SpendLedger
from policies.config import Period
from policies.state.base import Account, Crossed, Shortfall, StateStore
from policies.state.errors import StoreUnavailable
from policies.state.retries import RetryQueue

LateCrossings = Callable[[tuple[ThresholdCrossing, ...]], None]

_DAY = 86_400


@lru_cache(maxsize=4096)
def _alert_levels(cap: int, thresholds: tuple[float, ...]) -> tuple[tuple[str, int], ...]:
    return tuple((f"{t:g}", math.ceil(Decimal(cap) * Decimal(str(t)))) for t in thresholds)


def remaining_after(budgets: Sequence[Budget], used: Sequence[int], cost: int) -> dict[str, int]:
    """Per scope kind (team, key, agent, task), the tightest budget's room once `cost` is spent, as
    the store saw it when the hold was made (`used`: each budget's spent + reserved then; other calls
    may have spent since). Nano-dollars."""
    remaining: dict[str, int] = {}
    for budget, spent in zip(budgets, used, strict=True):
        room = max(0, budget.cap - spent - cost)
        kind = budget.scope.kind
        remaining[kind] = min(room, remaining.get(kind, room))
    return remaining


class Reservation:
    """Money held for one call. Call `settle(actual_cost)` once the real cost is known, or `release()` when
    the call cost nothing; either is idempotent, and neither raises for store failures (the settle is
    queued and retried until the store takes it)."""

    __slots__ = ("_accounts", "_amount", "_budgets", "_engine", "_member", "_open", "_used", "_windows")

    def __init__(
        self,
        engine: BudgetEngine | None,
        budgets: list[Budget],
        windows: list[Window],
        accounts: list[Account],
        member: str,
        amount: int,
        used: tuple[int, ...] = (),
    ) -> None:
        self._engine = engine
        self._used = used
        self._budgets = budgets
        self._windows = windows
        self._accounts = accounts
        self._member = member
        self._amount = amount
        self._open = engine is not None

    @classmethod
    def unlimited(cls) -> Reservation:
        """A reservation that holds nothing: no budget applied, or the store failed open."""
        return cls(None, [], [], [], "", 0)

    @property
    def amount(self) -> int:
        """The worst-case cost held, nano-dollars."""
        return self._amount

    def remaining_after(self, cost: int) -> dict[str, int]:
        """Per scope kind, the tightest budget's room once `cost` is spent (see `remaining_after`)."""
        return remaining_after(self._budgets, self._used, cost)

    async def settle(self, actual_cost: int, on_late: LateCrossings | None = None) -> tuple[ThresholdCrossing, ...]:
        """Replace the hold by the real cost (nano-dollars). Returns the alert thresholds this spend reached
        for the first time in the period, for the gateway to deliver; when the store could not take the
        settle now, it is retried, and the thresholds it reaches once it lands go to `on_late`."""
        if not self._open:
            return ()
        self._open = False
        assert self._engine is not None
        return await self._engine._settle(self, max(0, actual_cost), on_late)

    async def release(self) -> None:
        """Drop the hold; nothing was spent."""
        if not self._open:
            return
        self._open = False
        assert self._engine is not None
        await self._engine._settle(self, 0)


class BudgetEngine:
    """Reserve, settle and report budgets held in a state store."""

    def __init__(
        self,
        store: StateStore,
        *,
        reservation_seconds: float = 900.0,
        task_idle_seconds: float = 30 * _DAY,
        clock: Callable[[], float] = time.time,
        retries: RetryQueue | None = None,
    ) -> None:
        """`reservation_seconds`: how long a hold may live unsettled before it counts as leaked (longer than
        any call). `task_idle_seconds`: a `total` task budget is forgotten after this long unused. `clock`:
        unix seconds (periods and deadlines follow it). `retries`: where settles the store could not take
        wait to be retried (shared with the rate limiter)."""
        self._store = store
        self._hold_ms = round(reservation_seconds * 1000)
        self._task_idle = round(task_idle_seconds)
        self._clock = clock
        self._windows: dict[Period, Window] = {}
        self._ids = itertools.count()
        self._instance = secrets.token_hex(6)
        self.retries = retries if retries is not None else RetryQueue()
        self.spend: SpendLedger | None = None
        """Where missing accounts are rebuilt from (the usage ledger); None: they start from zero."""
        self.rebuilt = 0
        """Accounts rebuilt from the ledger (missing from the store: new, expired, or lost with it)."""
        self._rebuilding: dict[str, asyncio.Future[None]] = {}

    async def rebuild(self, budget: Budget, window: Window, account: Account) -> None:
        """Create a missing account with what the ledger says the budget's scope spent in its window.
        Raises StoreUnavailable (the store, or the ledger, cannot answer: the budget cannot be known)."""
        if self.spend is None:
            return
        running = self._rebuilding.get(account.key)
        if running is None:  # calls that find the same account missing at once share one rebuild
            running = self._rebuilding[account.key] = asyncio.ensure_future(self._rebuild(budget, window, account))
            running.add_done_callback(lambda done: self._rebuilt(account.key, done))
        await asyncio.shield(running)

    def _rebuilt(self, key: str, done: asyncio.Future[None]) -> None:
        del self._rebuilding[key]
        if not done.cancelled():
            done.exception()  # retrieved: every caller waiting for it got it already

    async def _rebuild(self, budget: Budget, window: Window, account: Account) -> None:
        assert self.spend is not None
        scope = budget.scope
        try:
            spent = await self.spend.spent_nanos(scope.team, scope.kind, scope.name, window.start)
        except Exception as exc:
            raise StoreUnavailable(f"the ledger cannot say what {scope} spent: {type(exc).__name__}: {exc}") from exc
        await self._store.seed(account, spent, int(self._clock() * 1000))
        self.rebuilt += 1

    def _window(self, period: Period, now: float) -> Window:
        window = self._windows.get(period)
        if window is None or not window.contains(now):
            window = self._windows[period] = window_of(period, now)
        return window

    def _account(self, budget: Budget, window: Window, now: float) -> Account:
        if window.end is not None:
            expire_at = window.end + _DAY
        elif budget.scope.kind == "task":
            expire_at = int(now) + self._task_idle
        else:
            expire_at = 0
        key = f"{budget.scope.state_key}:b:{window.label}"
        return Account(key, budget.cap, expire_at, _alert_levels(budget.cap, budget.alert_thresholds))

    async def reserve(self, budgets: Sequence[Budget], cost: int) -> Reservation:
        """Hold `cost` (worst case, nano-dollars) on every budget, all or nothing.

        Raises BudgetExceeded for the first budget without room, or StoreUnavailable. Budgets that land on
        the same state (say a team's and a key's task budget with the same period) count once, against the
        smaller cap.
        """
        if not budgets:
            return Reservation.unlimited()
        now = self._clock()
        kept, windows, accounts = self.accounts_for(budgets, now)
        cost = max(0, cost)
        member = f"{self._instance}.{next(self._ids)}|{cost}"
        now_ms = int(now * 1000)
        deadline_ms = now_ms + self._hold_ms
        try:
            held = await self._store.reserve(accounts, member, cost, now_ms, deadline_ms)
        except StoreUnavailable as exc:
            if exc.maybe_applied:  # it may land yet, holding money for no call: undo it once the store is back
                self.retries.add(_Cancel(self._store, accounts, member, cost, deadline_ms))
            raise
        if isinstance(held, Shortfall):
            raise self.refusal(kept, windows, held, cost)
        return Reservation(self, kept, windows, accounts, member, cost, held.used)

    def accounts_for(self, budgets: Sequence[Budget], now: float) -> tuple[list[Budget], list[Window], list[Account]]:
        """The budgets' accounts in their current windows, once each (budgets that land on the same state
        count once, against the smaller cap)."""
        kept: list[Budget] = []
        windows: list[Window] = []
        accounts: list[Account] = []
        index: dict[str, int] = {}
        for budget in budgets:
            window = self._window(budget.period, now)
            account = self._account(budget, window, now)
            seen = index.get(account.key)
            if seen is None:
                index[account.key] = len(accounts)
                kept.append(budget)
                windows.append(window)
                accounts.append(account)
            elif budget.cap < accounts[seen].cap:
                kept[seen], accounts[seen] = budget, account
        return kept, windows, accounts

    def refusal(self, kept: list[Budget], windows: list[Window], short: Shortfall, cost: int) -> BudgetExceeded:
        """The refusal for the first budget without room for `cost`."""
        budget, window = kept[short.index], windows[short.index]
        return BudgetExceeded(
            budget.scope, budget.period, budget.cap, short.spent, short.reserved, cost, utc_moment(window.end)
        )

    def crossings(
        self, budgets: list[Budget], windows: list[Window], crossed: Crossed
    ) -> tuple[ThresholdCrossing, ...]:
        """The alert thresholds a settlement reached, as the gateway delivers them."""
        out = []
        for index, label, spent in crossed:
            budget, window = budgets[index], windows[index]
            start, end = utc_moment(window.start), utc_moment(window.end)
            out.append(ThresholdCrossing(budget.scope, budget.period, float(label), budget.cap, spent, start, end))
        return tuple(out)

    def cancel_later(self, accounts: list[Account], member: str, amount: int, until_ms: int) -> None:
        """Undo, once the store takes it, an admission whose reply was lost (it may land yet)."""
        self.retries.add(_Cancel(self._store, accounts, member, amount, until_ms))

    @property
    def hold_ms(self) -> int:
        return self._hold_ms

    def new_id(self) -> str:
        """A unique id for a hold (or a call's hold and leases)."""
        return f"{self._instance}.{next(self._ids)}"

    async def _settle(
        self, reservation: Reservation, actual: int, on_late: LateCrossings | None = None
    ) -> tuple[ThresholdCrossing, ...]:
        try:
            return await self._settle_now(reservation, actual)
        except StoreUnavailable:
            self.retries.add(_Settle(self, reservation, actual, on_late))
            return ()

    async def _settle_now(self, reservation: Reservation, actual: int) -> tuple[ThresholdCrossing, ...]:
        accounts = reservation._accounts
        crossed = await self._store.settle(accounts, reservation._member, reservation._amount, actual)
        return self.crossings(reservation._budgets, reservation._windows, crossed) if crossed else ()

    async def status(self, budget: Budget) -> BudgetStatus:
        """Cap, spent, reserved and remaining in the current window. Raises StoreUnavailable."""
        now = self._clock()
        window = self._window(budget.period, now)
        account = self._account(budget, window, now)
        spent, reserved = await self._store.balance(account, int(now * 1000))
        if self.spend is not None and not spent and not reserved and not await self._store.exists(account):
            await self.rebuild(budget, window, account)
            spent, reserved = await self._store.balance(account, int(now * 1000))
        return BudgetStatus.of(budget, window, spent, reserved)


class _Settle:
    """A settle to retry (idempotent: it consumes the hold)."""

    __slots__ = ("_actual", "_engine", "_on_late", "_reservation")
    kind = "budget"

    def __init__(
        self, engine: BudgetEngine, reservation: Reservation, actual: int, on_late: LateCrossings | None
    ) -> None:
        self._engine = engine
        self._reservation = reservation
        self._actual = actual
        self._on_late = on_late

    async def attempt(self) -> None:
        crossings = await self._engine._settle_now(self._reservation, self._actual)
        if crossings and self._on_late is not None:
            self._on_late(crossings)


class _Cancel:
    """A reservation whose reply was lost, to undo (idempotent; a late copy of it then changes nothing)."""

    __slots__ = ("_accounts", "_amount", "_member", "_store", "_until")
    kind = "cancel"

    def __init__(self, store: StateStore, accounts: list[Account], member: str, amount: int, until_ms: int) -> None:
        self._store = store
        self._accounts = accounts
        self._member = member
        self._amount = amount
        self._until = until_ms

    async def attempt(self) -> None:
        await self._store.cancel(self._accounts, self._member, self._amount, self._until)
