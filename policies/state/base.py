"""The state store contract: the few atomic operations budgets and concurrency limits need, plus the
`limits` storage for the same place. Two implementations: `MemoryStore` and `RedisStore`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from limits.aio.storage import Storage


@dataclass(frozen=True, slots=True)
class Account:
    """One budget in one period window, as the store sees it. Amounts are integer nano-dollars.

    `key` is the state key without the store's prefix; `expire_at` (unix seconds, 0 = never) is when the
    window's state may be forgotten; `alerts` are (label, level) pairs: report `label` once the spend
    reaches `level`.
    """

    key: str
    cap: int
    expire_at: int = 0
    alerts: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Shortfall:
    """Why a reservation did not fit: the first account without room, and what it held."""

    index: int
    spent: int
    reserved: int


@dataclass(frozen=True, slots=True)
class Reserved:
    """A hold that fit: what each account had spent or held before it (nano-dollars, in order)."""

    used: tuple[int, ...]


class StateStore(ABC):
    """Atomic budget and lease operations. Each call is all-or-nothing across the accounts or lease sets
    it names, and is one round trip on Redis. Failures raise `StoreUnavailable`.

    Times are passed in (ms since the epoch) so that callers own the clock.
    """

    kind: str
    limits_storage: Storage
    """The `limits` async storage over the same store, for the rate limiter."""
    parallel: bool
    """Whether independent calls gain from running concurrently (network round trips) or not (memory)."""

    @abstractmethod
    async def reserve(
        self, accounts: Sequence[Account], member: str, amount: int, now_ms: int, deadline_ms: int
    ) -> Reserved | Shortfall:
        """Hold `amount` on every account if each has `spent + reserved + amount <= cap`, else change nothing.

        `member` names the hold (unique per reservation, ending in `|<amount>`); the hold lapses at
        `deadline_ms` if it is never settled.
        """

    @abstractmethod
    async def settle(
        self, accounts: Sequence[Account], member: str, held: int, actual: int
    ) -> list[tuple[int, str, int]]:
        """Drop the hold `member` (of `held`) and add `actual` to each account's spend.

        Returns (account index, alert label, spend) for each alert level reached for the first time.
        """

    @abstractmethod
    async def balance(self, account: Account, now_ms: int) -> tuple[int, int]:
        """(spent, reserved) of an account, after dropping lapsed holds."""

    @abstractmethod
    async def acquire(
        self, keys: Sequence[str], limits: Sequence[int], member: str, now_ms: int, deadline_ms: int
    ) -> int | None:
        """Add lease `member` to every lease set if each holds fewer than its limit of live leases, else
        change nothing and return the index of the first full set."""

    @abstractmethod
    async def release(self, keys: Sequence[str], member: str) -> None:
        """Remove lease `member` from the lease sets."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers (readiness)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close connections."""

    def guard(self) -> StoreGuard:
        """A context manager for calls into `limits`: it turns storage errors into StoreUnavailable."""
        return _NO_GUARD


class StoreGuard:
    """`with store.guard(): await ...` turns a store's client errors into StoreUnavailable. This base
    version (for in-process stores) does nothing."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        return None


_NO_GUARD = StoreGuard()
