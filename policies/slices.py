"""Strict local slices: a replica draws k calls' worth of a call shape's limits and budgets from a shared
store in one admission, admits the next calls of that shape from it in memory, and gives it back in one
settlement. A call shape is one set of limit rules and budget accounts (an agent of a key of a team,
calling a model).

A slice is an ordinary admission for k calls: k requests and k times the call's token bound on each
rate counter, k leases in each concurrency set, k times the call's worst-case cost held on each budget.
Calls draw from it while it has room for them, it is in the rate window it was counted in, and it is
younger than `max_age_ms`. Once closed and its last call has ended, one settlement gives it back: the
requests and tokens its calls did not use come off the window they were counted in, the leases are
released, the hold is replaced by what its calls spent (alert thresholds are checked then).

- Exact: every call admitted from a slice was counted and held in the store before it ran, so no limit
  or cap is exceeded, across replicas too.
- Fair: a slice takes at most 1/SHARE of the room a limit or budget had at the last admission the store
  answered, and none is drawn where that is less than two calls: near a cap, and under small limits,
  every call is admitted by the store alone as before (exact counting included).
- Cheap: a busy shape costs the store two round trips per slice instead of two per call. The slice
  size follows demand: it doubles while slices run out before their age, else becomes twice what the
  last one used.

The price: the store sees a slice's spend when the slice is given back (at most `max_age_ms` after it
was drawn, plus the longest call in it; `flush()` gives back idle ones at once), the unused part of a
slice counts as used for other replicas meanwhile, and a replica that dies loses its open slices'
spend from the budget counters (their holds lapse like a dead call's; the ledger has every call).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from policies.budgets.model import Budget, ThresholdCrossing
from policies.budgets.periods import Window
from policies.state.base import NEAR_CAP, Account, Counter, Entry, Exit, Lease, Verdict, weighted
from policies.state.errors import StoreUnavailable

if TYPE_CHECKING:
    from policies.calls import CallPolicies

SHARE = NEAR_CAP
"""A slice takes at most 1/SHARE of the room left in each limit and budget."""
MIN_CALLS = 2  # a slice smaller than this saves nothing
FIRST_CALLS = 8  # a shape's first slice, before its demand is known
WAITS = 2  # draws by other calls a call waits for before it draws one itself, or asks the store alone
MAX_SHAPES = 10_000  # shapes remembered (task budgets make one per task): forgotten all at once beyond

LateCrossings = Callable[[tuple[ThresholdCrossing, ...]], None]


@dataclass(eq=False, slots=True)
class Slice:
    """One drawn slice (see the module docstring). Amounts as in `Entry`; `taken` per counter (requests,
    then tokens) is what its calls took, corrected to their real tokens as they end."""

    shape: tuple[object, ...]
    entry: Entry  # the slice's own admission: k calls' worth
    size: int
    window: int
    opened_ms: int
    counts: tuple[tuple[int, int], ...]  # each counter's (previous, current) before the slice
    used: tuple[int, ...]  # each account's spent + reserved before the slice
    budgets: list[Budget]
    windows: list[Window]
    taken: list[int]
    calls: int = 0
    cost: int = 0  # the holds of its running calls plus what its ended calls spent
    spent: int = 0
    running: int = 0
    closed: bool = False
    kept: int = 0  # the leases it holds in each lease set (its size, until trimmed)
    on_late: LateCrossings | None = field(default=None)

    def room_for(self, tokens: int, cost: int) -> bool:
        if self.calls >= self.size or self.cost + cost > self.entry.amount:
            return False
        requests = len(self.entry.requests)
        return all(
            self.taken[i] + (1 if i < requests else tokens) <= counter.amount
            for i, counter in enumerate((*self.entry.requests, *self.entry.tokens))
        )


@dataclass(slots=True)
class _Shape:
    fit: int = 0  # calls a slice may take, from the room the store last reported
    demand: int = FIRST_CALLS  # calls the last slices used


class Slices:
    """The open slices of one process (see the module docstring)."""

    def __init__(self, owner: CallPolicies, *, max_calls: int = 64, max_age_ms: int = 250) -> None:
        self._owner = owner
        self.max_calls = max_calls
        self.max_age_ms = max_age_ms
        self._open: dict[tuple[object, ...], Slice] = {}
        self._opening: dict[tuple[object, ...], asyncio.Future[None]] = {}
        self._shapes: dict[tuple[object, ...], _Shape] = {}
        self._returning: set[asyncio.Task[None]] = set()
        self._returns: dict[tuple[object, ...], set[asyncio.Task[None]]] = {}  # the same, by shape
        self._closed: dict[tuple[object, ...], set[Slice]] = {}  # closed, with calls still running
        self.drawn = 0
        """Slices drawn."""
        self.admitted = 0
        """Calls admitted from slices."""

    # -- admission ---------------------------------------------------------------------------------

    async def take(
        self,
        shape: tuple[object, ...],
        entry: Entry,
        budgets: list[Budget],
        windows: list[Window],
        now_ms: int,
    ) -> tuple[Slice, Verdict] | None:
        """Admit the call `entry` describes from a slice of its shape, drawing one when there is none
        and the shape has room for one; None: admit it through the store (no slice fits)."""
        for waited in range(WAITS + 1):
            taken = self._take(shape, entry, now_ms)
            if taken is not None:
                return taken
            opening = self._opening.get(shape)
            if opening is None:
                break
            if waited == WAITS:
                return None
            await asyncio.shield(opening)  # another call of the shape is drawing one: share it
            now_ms = self._owner.now_ms()
        known = self._shapes.get(shape)
        size = min(known.fit, known.demand, self.max_calls) if known is not None else 0
        if size < MIN_CALLS:
            return None
        if await self._draw(shape, entry, size, budgets, windows):
            return self._take(shape, entry, self._owner.now_ms())
        return None

    def learn(self, shape: tuple[object, ...], entry: Entry, verdict: Verdict, now_ms: int) -> None:
        """Size the shape's next slice from what the store answered a call admitted by itself."""
        known = self._shapes.get(shape)
        if known is None:
            if len(self._shapes) >= MAX_SHAPES:
                self._shapes.clear()
            known = self._shapes[shape] = _Shape()
        known.fit = _fit(entry, verdict, now_ms, self._owner.limiter.window_ms, 1)

    def _take(self, shape: tuple[object, ...], entry: Entry, now_ms: int) -> tuple[Slice, Verdict] | None:
        s = self._open.get(shape)
        if s is None:
            return None
        tokens = entry.tokens[0].amount if entry.tokens else 0
        fresh = now_ms // self._owner.limiter.window_ms == s.window and now_ms - s.opened_ms < self.max_age_ms
        if not fresh or not s.room_for(tokens, entry.amount):
            self._close(s)
            return None
        counts = tuple((previous, current + s.taken[i]) for i, (previous, current) in enumerate(s.counts))
        used = tuple(before + s.cost for before in s.used)
        requests = len(entry.requests)
        for i in range(len(s.taken)):
            s.taken[i] += 1 if i < requests else tokens
        s.calls += 1
        s.running += 1
        self.admitted += 1
        s.cost += entry.amount
        return s, Verdict(counts, used)

    async def _draw(
        self, shape: tuple[object, ...], entry: Entry, size: int, budgets: list[Budget], windows: list[Window]
    ) -> bool:
        owner = self._owner
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._opening[shape] = done
        member = owner.budgets.new_id()
        amount = entry.amount * size
        drawn = Entry(
            requests=[Counter(c.key, c.limit, size) for c in entry.requests],
            tokens=[Counter(c.key, c.limit, c.amount * size) for c in entry.tokens],
            leases=entry.leases,
            accounts=entry.accounts,
            amount=amount,
            lease_member=member,
            hold_member=f"{member}|{amount}",
            refine=entry.refine,
            lease_count=size if entry.leases else 1,
            rebuild=entry.rebuild,
        )
        try:
            now_ms, window_ms = owner.now_ms(), owner.limiter.window_ms
            verdict = await owner.ask(drawn)
            known = self._shapes.get(shape)
            if not verdict.admitted:
                if known is not None:
                    known.fit = 0  # the store admits the next call itself, and says how much room is left
                return False
            if known is not None:
                known.fit = _fit(entry, verdict, now_ms, window_ms, size + 1)
            taken = [0] * (len(entry.requests) + len(entry.tokens))
            window = now_ms // window_ms
            s = Slice(shape, drawn, size, window, now_ms, verdict.counts, verdict.used, budgets, windows, taken)
            s.kept = size
            self._open[shape] = s
            self.drawn += 1
            asyncio.get_running_loop().call_later(self.max_age_ms / 1000, self._expire, s)
            return True
        finally:
            del self._opening[shape]
            done.set_result(None)

    # -- settlement --------------------------------------------------------------------------------

    def end(self, s: Slice, held: int, cost: int, corrections: Sequence[int], on_late: LateCrossings | None) -> None:
        """A call of slice `s` ended: it held `held`, spent `cost`, and its token counters take
        `corrections` (in order). The slice goes back once it is closed and this was its last call."""
        requests = len(s.entry.requests)
        for i, amount in enumerate(corrections):
            s.taken[requests + i] += amount
        s.cost += cost - held
        s.spent += cost
        s.running -= 1
        if on_late is not None:
            s.on_late = on_late
        if s.closed and not s.running:
            self._give_back(s)

    def _expire(self, s: Slice) -> None:
        if not s.closed:
            self._close(s)

    def _close(self, s: Slice) -> None:
        s.closed = True
        if self._open.get(s.shape) is s:
            del self._open[s.shape]
        known = self._shapes.get(s.shape)
        if known is not None:  # used up before its age: twice as large next time; else what it used
            known.demand = min(2 * s.size, self.max_calls) if s.calls >= s.size else max(MIN_CALLS, 2 * s.calls)
        if not s.running:
            self._give_back(s)
        else:
            self._closed.setdefault(s.shape, set()).add(s)
            self._trim(s)

    def _trim(self, s: Slice) -> None:
        """Give back the leases of a closed slice that its running calls do not use."""
        if not s.entry.leases or s.running >= s.kept:
            return
        members = [f"{s.entry.lease_member}#{j}" for j in range(s.running + 1, s.kept + 1)]
        s.kept = s.running
        self._track(s.shape, self._release([lease.key for lease in s.entry.leases], members))

    async def _release(self, keys: list[str], members: list[str]) -> None:
        with contextlib.suppress(StoreUnavailable):  # they go back with the slice then
            await self._owner.store.release(keys, members)

    def _track(self, shape: tuple[object, ...], work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._returning.add(task)
        self._returns.setdefault(shape, set()).add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._returning.discard(task)
            returns = self._returns.get(shape)
            if returns is not None:
                returns.discard(task)
                if not returns:
                    del self._returns[shape]

        task.add_done_callback(done)

    async def give_up(self, shape: tuple[object, ...]) -> bool:
        """Before a call of `shape` is refused: close its open slice and wait until what its slices do not
        use is back in the store. True if anything went back (the store may have room now)."""
        s = self._open.get(shape)
        if s is not None:
            self._close(s)
        for closed in self._closed.get(shape, ()):
            self._trim(closed)  # calls that ended since it closed
        returns = self._returns.get(shape)
        if not returns:
            return s is not None
        await asyncio.wait(list(returns))
        return True

    def _give_back(self, s: Slice) -> None:
        closed = self._closed.get(s.shape)
        if closed is not None:
            closed.discard(s)
            if not closed:
                del self._closed[s.shape]
        owner = self._owner
        entry = s.entry
        counters = (*entry.requests, *entry.tokens)
        unused = [Counter(c.key, c.limit, s.taken[i] - c.amount) for i, c in enumerate(counters)]
        exit = Exit(
            corrections=[c for c in unused if c.amount],
            lease_keys=[lease.key for lease in entry.leases],
            accounts=entry.accounts,
            lease_member=entry.lease_member,
            hold_member=entry.hold_member,
            held=entry.amount,
            actual=s.spent,
            hit_window=s.window,
            admitted_ms=s.opened_ms,
            ended_ms=owner.now_ms(),
            lease_count=entry.lease_count,
        )  # fmt: skip

        def late(crossed: list[tuple[int, str, int]]) -> None:
            if s.on_late is not None:
                s.on_late(owner.budgets.crossings(s.budgets, s.windows, crossed))

        async def send() -> None:
            crossed = await owner.settler.finish(exit, late)
            if crossed:
                late(crossed)

        self._track(s.shape, send())

    async def renew(self, s: Slice, deadline_ms: int) -> bool:
        """Keep slice `s`'s leases and hold while one of its calls runs long."""
        entry = s.entry
        exit = Exit(
            lease_keys=[lease.key for lease in entry.leases],
            accounts=entry.accounts,
            lease_member=entry.lease_member,
            hold_member=entry.hold_member,
            lease_count=entry.lease_count,
        )
        return await self._owner.store.renew(exit, deadline_ms)

    async def flush(self, seconds: float | None = None) -> None:
        """Close every open slice and wait (at most `seconds`) until those without running calls are
        given back."""
        for s in list(self._open.values()):
            self._close(s)
        if self._returning:
            await asyncio.wait(list(self._returning), timeout=seconds)


def _fit(entry: Entry, verdict: Verdict, now_ms: int, window_ms: int, calls: int) -> int:
    """How many calls like `entry` a slice may take: 1/SHARE of the room each limit and budget has left
    once `calls` such calls are counted on the `verdict`'s numbers."""
    elapsed = now_ms % window_ms
    fit = 1 << 30
    for counter, (previous, current) in zip((*entry.requests, *entry.tokens), verdict.counts, strict=True):
        if counter.amount > 0:
            room = counter.limit - weighted(previous, current + calls * counter.amount, elapsed, window_ms)
            fit = min(fit, room // (SHARE * counter.amount))
    for lease in entry.leases:
        fit = min(fit, _lease_fit(lease))
    if entry.amount > 0:
        for account, used in zip(entry.accounts, verdict.used, strict=True):
            fit = min(fit, _account_fit(account, used, entry.amount, calls))
    return max(0, fit)


def _lease_fit(lease: Lease) -> int:
    return lease.limit // SHARE  # the store does not say how many are live: the limit bounds it


def _account_fit(account: Account, used: int, amount: int, calls: int) -> int:
    return (account.cap - used - calls * amount) // (SHARE * amount)
