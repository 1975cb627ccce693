"""The in-process store: plain dicts on one event loop.

Every method runs to completion without awaiting anything, so each is atomic with respect to other
tasks on the loop: no locks. (One process only; replicas need Redis.) Expired accounts and empty lease
sets are swept a few per operation, so memory follows the live state and no operation pauses to scan.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence

from limits.storage import storage_from_string

from policies.state.base import Account, Reserved, Shortfall, StateStore

_SWEEP_EVERY = 64  # operations between sweep steps; each step looks at as many entries


class _Account:
    __slots__ = ("alerted", "expire_at", "holds", "reserved", "spent")

    def __init__(self) -> None:
        self.spent = 0
        self.reserved = 0
        self.expire_at = 0  # unix seconds, 0 = never
        # member -> (amount, deadline_ms), oldest first: holds are added with one TTL, so they lapse in order.
        self.holds: OrderedDict[str, tuple[int, int]] | None = None
        self.alerted: set[str] | None = None

    def expired(self, now_ms: int) -> bool:
        return bool(self.expire_at) and self.expire_at * 1000 <= now_ms

    def sweep(self, now_ms: int) -> None:
        holds = self.holds
        while holds:
            member, (amount, deadline) = next(iter(holds.items()))
            if deadline > now_ms:
                break
            del holds[member]
            self.reserved = max(0, self.reserved - amount)


class MemoryStore(StateStore):
    """Budgets, leases and `limits` windows in this process's memory."""

    kind = "memory"
    parallel = False

    def __init__(self) -> None:
        self.limits_storage = storage_from_string("async+memory://")  # type: ignore[assignment]
        self._accounts: dict[str, _Account] = {}
        self._leases: dict[str, OrderedDict[str, int]] = {}
        self._ops = 0
        self._account_sweep: Iterator[str] = iter(())
        self._lease_sweep: Iterator[str] = iter(())

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

    async def reserve(
        self, accounts: Sequence[Account], member: str, amount: int, now_ms: int, deadline_ms: int
    ) -> Reserved | Shortfall:
        self._tick(now_ms)
        states = []
        for index, spec in enumerate(accounts):
            state = self._account(spec.key, now_ms)
            state.sweep(now_ms)
            if state.spent + state.reserved + amount > spec.cap:
                return Shortfall(index, state.spent, state.reserved)
            states.append(state)
        used = tuple(state.spent + state.reserved for state in states)
        for spec, state in zip(accounts, states, strict=True):
            state.reserved += amount
            if state.holds is None:
                state.holds = OrderedDict()
            state.holds[member] = (amount, deadline_ms)
            if spec.expire_at:
                state.expire_at = spec.expire_at
        return Reserved(used)

    async def settle(
        self, accounts: Sequence[Account], member: str, held: int, actual: int
    ) -> list[tuple[int, str, int]]:
        crossed: list[tuple[int, str, int]] = []
        for index, spec in enumerate(accounts):
            state = self._accounts.get(spec.key)
            if state is None:  # expired meanwhile: the spend still counts, in a fresh record
                state = self._accounts[spec.key] = _Account()
            if state.holds and state.holds.pop(member, None) is not None:
                state.reserved = max(0, state.reserved - held)
            state.spent += actual
            if spec.expire_at:
                state.expire_at = spec.expire_at
            for label, level in spec.alerts:
                if state.spent >= level and (state.alerted is None or label not in state.alerted):
                    if state.alerted is None:
                        state.alerted = set()
                    state.alerted.add(label)
                    crossed.append((index, label, state.spent))
        return crossed

    async def balance(self, account: Account, now_ms: int) -> tuple[int, int]:
        state = self._accounts.get(account.key)
        if state is None or state.expired(now_ms):
            return 0, 0
        state.sweep(now_ms)
        return state.spent, state.reserved

    async def acquire(
        self, keys: Sequence[str], limits: Sequence[int], member: str, now_ms: int, deadline_ms: int
    ) -> int | None:
        self._tick(now_ms)
        sets = []
        for index, (key, limit) in enumerate(zip(keys, limits, strict=True)):
            leases = self._leases.get(key)
            if leases is None:
                leases = self._leases[key] = OrderedDict()
            else:
                _drop_lapsed(leases, now_ms)
            if len(leases) >= limit:
                return index
            sets.append(leases)
        for leases in sets:
            leases[member] = deadline_ms
        return None

    async def release(self, keys: Sequence[str], member: str) -> None:
        for key in keys:
            leases = self._leases.get(key)
            if leases is not None:
                leases.pop(member, None)

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
