"""The state store contract: the few atomic operations budgets and rate limits need. Two
implementations: `MemoryStore` and `RedisStore`.

Rate-limit counters are sliding window counters: a count per fixed window (aligned on the epoch),
the previous window's count weighted by how much of it the sliding window still covers. Both stores
compute them with the same integer arithmetic (`weighted`), so a limit means the same on either.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

LAPSED_KEEP_MS = 86_400_000  # how long a hold that lapsed unsettled is remembered: a late settle still counts


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
class Counter:
    """One rate-limit counter of a call: its state key (without the store's prefix), its limit per
    window, and what the call adds to it (when settling: the correction, which may be negative)."""

    key: str
    limit: int
    amount: int


@dataclass(frozen=True, slots=True)
class Lease:
    """One concurrency limit of a call: the key of its lease set and how many live leases it allows."""

    key: str
    limit: int


@dataclass(frozen=True, slots=True)
class Hit:
    """What `hit` found: each counter's (previous window, current window) counts before the call, and
    what refused it, if anything (then nothing changed)."""

    counts: tuple[tuple[int, int], ...]
    refused: int | None = None  # index of the first counter without room
    full: int | None = None  # index of the first lease set without room

    @property
    def admitted(self) -> bool:
        return self.refused is None and self.full is None


def weighted(previous: int, current: int, elapsed_ms: int, window_ms: int) -> int:
    """The sliding window's count `elapsed_ms` into the current window: the current count plus the
    share of the previous window still inside the sliding window (rounded down)."""
    return current + previous * (window_ms - elapsed_ms) // window_ms


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
    parallel: bool
    """Whether independent calls gain from running concurrently (network round trips) or not (memory)."""

    @abstractmethod
    async def reserve(
        self, accounts: Sequence[Account], member: str, amount: int, now_ms: int, deadline_ms: int
    ) -> Reserved | Shortfall:
        """Hold `amount` on every account if each has `spent + reserved + amount <= cap`, else change nothing.

        `member` names the hold (unique per reservation, ending in `|<amount>`); the hold lapses at
        `deadline_ms` if it is never settled. A second copy of a reservation changes nothing; one that
        was cancelled raises StoreUnavailable and changes nothing.
        """

    @abstractmethod
    async def settle(
        self, accounts: Sequence[Account], member: str, held: int, actual: int
    ) -> list[tuple[int, str, int]]:
        """Consume the hold `member` (of `held`) and add `actual` to each account's spend; a hold that
        lapsed unsettled is remembered for `LAPSED_KEEP_MS` and still counts. Where the hold is gone
        (settled already) nothing changes: a settle may be retried after a lost reply.

        Returns (account index, alert label, spend) for each alert level reached for the first time.
        """

    @abstractmethod
    async def cancel(self, accounts: Sequence[Account], member: str, amount: int, until_ms: int) -> None:
        """Undo a reservation whose reply was lost: drop the hold `member` (of `amount`) where it
        landed; where it has not, mark it so that a late copy of it changes nothing (the marker goes
        at `until_ms`, the hold's deadline). Idempotent."""

    @abstractmethod
    async def balance(self, account: Account, now_ms: int) -> tuple[int, int]:
        """(spent, reserved) of an account, after dropping lapsed holds."""

    @abstractmethod
    async def hit(
        self,
        counters: Sequence[Counter],
        leases: Sequence[Lease],
        member: str,
        now_ms: int,
        window_ms: int,
        lease_deadline_ms: int,
    ) -> Hit:
        """Add each counter's amount to its current window and lease `member` in every lease set, if
        every counter stays within its limit (`weighted(...) + amount <= limit`) and every lease set
        holds fewer than its limit of live leases; else change nothing. Leases lapse at
        `lease_deadline_ms` unless released."""

    @abstractmethod
    async def adjust(
        self,
        counters: Sequence[Counter],
        lease_keys: Sequence[str],
        member: str,
        now_ms: int,
        window_ms: int,
        hit_window: int,
    ) -> None:
        """Settle a hit made in window number `hit_window` (`hit_ms // window_ms`): a negative amount
        is taken back from the window that holds the hit (nothing, once it has aged out), a positive
        one added to the current window up to the limit; then lease `member` is released."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers (readiness)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close connections."""
