"""The in-process store: plain dicts on one event loop.

Every method runs to completion without awaiting anything, so each is atomic with respect to other
tasks on the loop: no locks. (One process only; replicas need Redis.) Expired accounts and empty lease
sets are swept a few per operation, so memory follows the live state and no operation pauses to scan.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence

from policies.state.base import (
    LAPSED_KEEP_MS,
    NEAR_CAP,
    Account,
    Counter,
    Crossed,
    Entry,
    Exit,
    Shortfall,
    StateStore,
    Verdict,
    lease_members,
    weighted,
)
from policies.state.errors import StoreUnavailable

_SWEEP_EVERY = 64  # operations between sweep steps; each step looks at as many entries
_LAPSED, _CANCELLED, _SETTLED = "~", "x", "s"  # marks of holds that are gone but must be known for a while, as on Redis


class _Account:
    __slots__ = ("alerted", "expire_at", "holds", "marks", "reserved", "seeded", "spent")

    def __init__(self) -> None:
        self.seeded = 0  # when it was rebuilt from the ledger (ms), 0: never
        self.spent = 0
        self.reserved = 0
        self.expire_at = 0  # unix seconds, 0 = never
        # member -> (amount, deadline_ms), oldest first: holds are added with one TTL, so they lapse in order.
        self.holds: OrderedDict[str, tuple[int, int]] | None = None
        self.alerted: set[str] | None = None
        # member -> (mark, forget_at_ms): a hold that lapsed unsettled, or a reservation cancelled (rare).
        self.marks: dict[str, tuple[str, int]] | None = None

    def expired(self, now_ms: int) -> bool:
        return bool(self.expire_at) and self.expire_at * 1000 <= now_ms

    def mark(self, member: str, mark: str, forget_at_ms: int) -> None:
        if self.marks is None:
            self.marks = {}
        self.marks[member] = (mark, forget_at_ms)

    def sweep(self, now_ms: int) -> None:
        holds = self.holds
        while holds:
            member, (amount, deadline) = next(iter(holds.items()))
            if deadline > now_ms:
                break
            del holds[member]
            self.reserved = max(0, self.reserved - amount)
            self.mark(member, _LAPSED, now_ms + LAPSED_KEEP_MS)
        if holds is not None and not holds:
            self.holds = None  # most accounts hold nothing most of the time: keep them small
        if self.marks:
            for member in [m for m, (_, forget_at) in self.marks.items() if forget_at <= now_ms]:
                del self.marks[member]
            if not self.marks:
                self.marks = None


class _Window:
    """A rate-limit counter: the counts of window number `index` and of the one before it."""

    __slots__ = ("current", "index", "previous", "window_ms")

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self.index = 0
        self.current = 0
        self.previous = 0

    def roll(self, index: int) -> None:
        """Move on to window `index` (counts that fell out of the sliding window are dropped). A caller
        whose clock is behind (another replica's moved the window on) never moves it back."""
        if index <= self.index:
            return
        self.previous = self.current if index == self.index + 1 else 0
        self.current = 0
        self.index = index

    def dead(self, now_ms: int) -> bool:
        return now_ms // self.window_ms > self.index + 1


class MemoryStore(StateStore):
    """Budgets, leases and rate-limit windows in this process's memory."""

    kind = "memory"
    parallel = False

    def __init__(self) -> None:
        self._accounts: dict[str, _Account] = {}
        self._leases: dict[str, OrderedDict[str, int]] = {}
        self._windows: dict[str, _Window] = {}
        self._ops = 0
        self._account_sweep: Iterator[str] = iter(())
        self._lease_sweep: Iterator[str] = iter(())
        self._window_sweep: Iterator[str] = iter(())

    def _account(self, key: str, now_ms: int) -> _Account:
        account = self._accounts.get(key)
        if account is None or account.expired(now_ms):
            account = self._accounts[key] = _Account()
        return account

    def _tick(self, now_ms: int) -> None:
        self._ops += 1
        if self._ops % _SWEEP_EVERY:
            return
        for _ in range(_SWEEP_EVERY):
            key = next(self._account_sweep, None)
            if key is None:
                self._account_sweep = iter(list(self._accounts))
                break
            account = self._accounts.get(key)
            if account is not None and account.expired(now_ms):
                del self._accounts[key]
        for _ in range(_SWEEP_EVERY):
            key = next(self._lease_sweep, None)
            if key is None:
                self._lease_sweep = iter(list(self._leases))
                break
            leases = self._leases.get(key)
            if leases is not None:
                _drop_lapsed(leases, now_ms)
                if not leases:
                    del self._leases[key]
        for _ in range(_SWEEP_EVERY):
            key = next(self._window_sweep, None)
            if key is None:
                self._window_sweep = iter(list(self._windows))
                break
            window = self._windows.get(key)
            if window is not None and window.dead(now_ms):
                del self._windows[key]

    async def admit(self, entry: Entry, now_ms: int, window_ms: int, deadline_ms: int) -> Verdict:
        self._tick(now_ms)
        accounts, member, amount = entry.accounts, entry.hold_member, entry.amount
        first = self._accounts.get(accounts[0].key) if accounts else None
        if first is not None and first.marks and first.marks.get(member, ("",))[0] == _CANCELLED:
            raise StoreUnavailable(f"reservation {member} was cancelled", store="memory")
        if first is not None and first.holds and member in first.holds:  # a second copy: changes nothing
            return Verdict(used=tuple(max(0, s.spent + s.reserved - amount) for s in map(self._state, accounts)))
        index, elapsed = divmod(now_ms, window_ms)
        counters = [*entry.requests, *entry.tokens]
        windows: list[_Window] = []
        counts: list[tuple[int, int]] = []
        refused: int | None = None
        for i, counter in enumerate(counters):
            window = self._windows.get(counter.key)
            if window is None or window.window_ms != window_ms:
                window = self._windows[counter.key] = _Window(window_ms)
            window.roll(index)
            windows.append(window)
            counts.append((window.previous, window.current))
            used = weighted(window.previous, window.current, elapsed if window.index == index else 0, window_ms)
            if refused is None and used + counter.amount > counter.limit:
                refused = i
        if refused is not None and refused < len(entry.requests):
            return Verdict(tuple(counts), refused=refused)
        sets = []
        for i, lease in enumerate(entry.leases):
            held = self._leases.get(lease.key)
            if held is None:
                held = self._leases[lease.key] = OrderedDict()
            else:
                _drop_lapsed(held, now_ms)
            if len(held) + entry.lease_count > lease.limit:
                return Verdict(tuple(counts), full=i)
            sets.append(held)
        if refused is not None:
            return Verdict(tuple(counts), refine=True) if entry.refine else Verdict(tuple(counts), refused=refused)
        if entry.rebuild:
            missing = tuple(i for i, spec in enumerate(accounts) if not self._live(spec.key, now_ms))
            if missing:
                return Verdict(tuple(counts), missing=missing)
        states = []
        near = False
        for i, spec in enumerate(accounts):
            state = self._account(spec.key, now_ms)
            state.sweep(now_ms)
            room = spec.cap - state.spent - state.reserved - amount
            if room < 0:
                if entry.refine:
                    return Verdict(tuple(counts), refine=True)
                return Verdict(tuple(counts), short=Shortfall(i, state.spent, state.reserved))
            near = near or room < NEAR_CAP * (state.reserved + amount)
            states.append(state)
        if near and entry.refine:
            return Verdict(tuple(counts), refine=True)
        for window, counter in zip(windows, counters, strict=True):
            window.current += counter.amount
        members = lease_members(entry.lease_member, entry.lease_count) if sets else []
        for held in sets:
            for lease_member in members:
                held[lease_member] = deadline_ms
        used_before = tuple(state.spent + state.reserved for state in states)
        for spec, state in zip(accounts, states, strict=True):
            state.reserved += amount
            if state.holds is None:
                state.holds = OrderedDict()
            state.holds[member] = (amount, deadline_ms)
            state.expire_at = spec.expire_at  # 0: never (a record made for a cancel mark had its expiry)
        return Verdict(tuple(counts), used_before)

    async def finish(self, exit: Exit, now_ms: int, window_ms: int) -> Crossed:
        crossed: Crossed = []
        found = False
        member, held, actual = exit.hold_member, exit.held, exit.actual
        for index, spec in enumerate(exit.accounts):
            state = self._accounts.get(spec.key)
            if state is None:  # expired meanwhile, holds and all: nothing to settle
                continue
            if state.holds and state.holds.pop(member, None) is not None:
                state.reserved = max(0, state.reserved - held)
                if not state.holds:
                    state.holds = None
            elif state.marks and state.marks.get(member, ("",))[0] == _LAPSED:
                del state.marks[member]
            elif (
                exit.admitted_ms < state.seeded <= exit.ended_ms
                and (state.marks or {}).get(member, ("",))[0] != _SETTLED
            ):  # in flight while the account was rebuilt: its spend is not in what the ledger said
                state.mark(member, _SETTLED, now_ms + LAPSED_KEEP_MS)
            else:
                continue  # settled already: a retried settle changes nothing
            found = True
            state.spent += actual
            if spec.expire_at:
                state.expire_at = spec.expire_at
            for label, level in spec.alerts:
                if state.spent >= level and (state.alerted is None or label not in state.alerted):
                    if state.alerted is None:
                        state.alerted = set()
                    state.alerted.add(label)
                    crossed.append((index, label, state.spent))
        members = lease_members(exit.lease_member, exit.lease_count) if exit.lease_keys else []
        for key in exit.lease_keys:
            leases = self._leases.get(key)
            if leases is not None:
                for lease_member in members:
                    found = leases.pop(lease_member, None) is not None or found
        if exit.corrections and (found or not (exit.accounts or exit.lease_keys)):
            self._correct(exit.corrections, now_ms, window_ms, exit.hit_window)
        return crossed

    def _correct(self, counters: Sequence[Counter], now_ms: int, window_ms: int, hit_window: int) -> None:
        index, elapsed = divmod(now_ms, window_ms)
        for counter in counters:
            window = self._windows.get(counter.key)
            if window is None or window.window_ms != window_ms:
                if counter.amount <= 0:
                    continue  # nothing left to give back
                window = self._windows[counter.key] = _Window(window_ms)
            window.roll(index)
            if counter.amount < 0:
                if hit_window == window.index:
                    window.current = max(0, window.current + counter.amount)
                elif hit_window == window.index - 1:
                    window.previous = max(0, window.previous + counter.amount)
            else:
                at = elapsed if window.index == index else 0
                room = counter.limit - weighted(window.previous, window.current, at, window_ms)
                window.current += max(0, min(room, counter.amount))

    async def renew(self, exit: Exit, deadline_ms: int) -> bool:
        found = False
        lease_member, hold_member = exit.lease_member, exit.hold_member
        members = lease_members(lease_member, exit.lease_count) if exit.lease_keys else []
        for key in exit.lease_keys:
            leases = self._leases.get(key)
            if leases is None:
                continue
            for member in members:
                if member in leases:
                    leases[member] = deadline_ms
                    leases.move_to_end(member)  # the latest deadline: the sets stay in deadline order
                    found = True
        for spec in exit.accounts:
            state = self._accounts.get(spec.key)
            if state is not None and state.holds and hold_member in state.holds:
                state.holds[hold_member] = (state.holds[hold_member][0], deadline_ms)
                state.holds.move_to_end(hold_member)
                found = True
        return found

    async def release(self, lease_keys: Sequence[str], members: Sequence[str]) -> None:
        for key in lease_keys:
            leases = self._leases.get(key)
            if leases is not None:
                for member in members:
                    leases.pop(member, None)

    async def cancel(self, accounts: Sequence[Account], member: str, amount: int, until_ms: int) -> None:
        for spec in accounts:
            state = self._accounts.get(spec.key)
            if state is None:
                continue
            if state.holds and state.holds.pop(member, None) is not None:
                state.reserved = max(0, state.reserved - amount)
                if not state.holds:
                    state.holds = None
            if state.marks and state.marks.get(member, ("",))[0] == _LAPSED:
                del state.marks[member]
        if accounts:
            state = self._accounts.get(accounts[0].key)
            if state is None:
                state = self._accounts[accounts[0].key] = _Account()
                state.expire_at = -(-until_ms // 1000)  # a record made for the mark goes with it
            state.mark(member, _CANCELLED, until_ms)

    def _state(self, spec: Account) -> _Account:
        return self._accounts.get(spec.key) or _Account()

    async def balance(self, account: Account, now_ms: int) -> tuple[int, int]:
        state = self._accounts.get(account.key)
        if state is None or state.expired(now_ms):
            return 0, 0
        state.sweep(now_ms)
        return state.spent, state.reserved

    def _live(self, key: str, now_ms: int) -> bool:
        account = self._accounts.get(key)
        return (
            account is not None
            and not account.expired(now_ms)
            and (account.seeded > 0 or account.spent > 0 or account.reserved > 0 or bool(account.holds))
        )

    async def seed(self, account: Account, spent: int, now_ms: int) -> bool:
        if self._live(account.key, now_ms):
            return False
        state = self._account(account.key, now_ms)
        state.spent, state.seeded, state.expire_at = spent, now_ms, account.expire_at
        return True

    async def exists(self, account: Account) -> bool:
        return self._live(account.key, 0)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _drop_lapsed(leases: OrderedDict[str, int], now_ms: int) -> None:
    while leases:
        member, deadline = next(iter(leases.items()))
        if deadline > now_ms:
            return
        del leases[member]
