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

from policies.state.errors import StoreUnavailable

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


def lease_members(member: str, count: int) -> list[str]:
    """The members one admission adds to each lease set: `member` itself, or `member#1`..`member#count`."""
    return [member] if count == 1 else [f"{member}#{j}" for j in range(1, count + 1)]


def weighted(previous: int, current: int, elapsed_ms: int, window_ms: int) -> int:
    """The sliding window's count `elapsed_ms` into the current window: the current count plus the
    share of the previous window still inside the sliding window (rounded down)."""
    return current + previous * (window_ms - elapsed_ms) // window_ms


@dataclass(frozen=True, slots=True)
class Reserved:
    """A hold that fit: what each account had spent or held before it (nano-dollars, in order)."""

    used: tuple[int, ...]


NEAR_CAP = 20
"""A budget is near its cap when what stays free after a hold is less than NEAR_CAP times what the calls
in flight hold (this one included). Holds made from a cheap bound are about twice the real cost: near
the cap they would refuse calls while money is left, so there the caller counts exactly (`Entry.refine`).
Far from it, a burst of bound-sized holds wastes at most 1/(NEAR_CAP + 1) of the room."""


@dataclass(frozen=True, slots=True)
class Entry:
    """Everything one call asks of the store to be admitted, checked and taken in one atomic step:
    request counters, token counters, concurrency lease sets, and budget accounts to hold `amount` on.

    `lease_member` names the call's leases, `hold_member` its budget hold (ending in `|<amount>`). With
    `refine`, the token and budget amounts are a cheap bound and an exact count may follow: where a token
    counter or a budget has no room for the bound, or a budget is near its cap (`NEAR_CAP`), the store
    answers `Verdict.refine` and changes nothing.
    """

    requests: Sequence[Counter] = ()
    tokens: Sequence[Counter] = ()
    leases: Sequence[Lease] = ()
    accounts: Sequence[Account] = ()
    amount: int = 0
    lease_member: str = ""
    hold_member: str = ""
    refine: bool = False
    lease_count: int = 1
    """How many leases `lease_member` takes in each lease set (a slice of calls takes one per call)."""
    rebuild: bool = False
    """Answer accounts that do not exist as `Verdict.missing` (to be rebuilt from the ledger with `seed`)
    instead of starting them at zero."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What `admit` found. `counts` are each counter's (previous, current) before the call, requests then
    tokens; `used` each account's spent + reserved before it (when admitted). At most one reason not to
    admit is set: a counter without room (`refused`, an index into requests then tokens), a full lease set
    (`full`), a budget without room (`short`), or `refine` (see `Entry`). Only an admitted call changed
    anything."""

    counts: tuple[tuple[int, int], ...] = ()
    used: tuple[int, ...] = ()
    refused: int | None = None
    full: int | None = None
    short: Shortfall | None = None
    refine: bool = False
    missing: tuple[int, ...] = ()  # accounts that do not exist (with `Entry.rebuild`)

    @property
    def admitted(self) -> bool:
        return (
            self.refused is None and self.full is None and self.short is None and not self.refine and not self.missing
        )


@dataclass(frozen=True, slots=True)
class Exit:
    """Everything one call gives back when it ends, in one step: token corrections (`Counter` amounts,
    positive or negative) to the window `hit_window` it was counted in, its leases, and its budget hold
    (`held`) replaced by the real cost (`actual`).

    Idempotent where the call holds something: the corrections apply only if this step consumed the
    call's hold or released one of its leases, so a retry after a lost reply changes nothing.
    """

    corrections: Sequence[Counter] = ()
    lease_keys: Sequence[str] = ()
    accounts: Sequence[Account] = ()
    lease_member: str = ""
    hold_member: str = ""
    held: int = 0
    actual: int = 0
    hit_window: int = 0
    admitted_ms: int = 0
    ended_ms: int = 0
    """When the call was admitted and ended: a hold lost with its account (the store restarted, the account
    rebuilt from the ledger while the call ran) still counts its spend once, if the call ended after the
    rebuild read the ledger."""
    lease_count: int = 1
    """The `Entry.lease_count` it was admitted with."""

    @property
    def retriable(self) -> bool:
        """Whether retrying it after a failure is safe for its corrections too (see above)."""
        return bool(self.lease_keys or self.accounts) or not self.corrections


Crossed = list[tuple[int, str, int]]
"""(account index, alert label, spend) for each alert level a settlement reached for the first time."""


class StateStore(ABC):
    """Atomic budget, rate-limit and lease operations. Each call is all-or-nothing across the counters,
    lease sets and accounts it names, and is one round trip on Redis. Failures raise `StoreUnavailable`.

    A call's whole admission is one `admit`, its whole settlement one `finish`; `finish_many` settles
    many calls in one round trip. `reserve`, `hit`, `settle` and `adjust` are the parts of those alone.
    Times are passed in (ms since the epoch) so that callers own the clock.
    """

    kind: str
    parallel: bool
    """Whether independent calls gain from running concurrently (network round trips) or not (memory)."""

    @abstractmethod
    async def admit(self, entry: Entry, now_ms: int, window_ms: int, deadline_ms: int) -> Verdict:
        """Check the entry's counters (`weighted(...) + amount <= limit`), lease sets (fewer than their
        limit of live leases) and accounts (`spent + reserved + amount <= cap`); if every one has room,
        count the call, lease `lease_member` and hold `amount` as `hold_member` on every account; else
        change nothing. Leases and the hold lapse at `deadline_ms` unless released or renewed.

        A second copy of an admission that holds money changes nothing; one whose hold was cancelled
        raises StoreUnavailable and changes nothing.
        """

    @abstractmethod
    async def finish(self, exit: Exit, now_ms: int, window_ms: int) -> Crossed:
        """Settle a call (see `Exit`): consume the hold (live, or remembered as lapsed for
        `LAPSED_KEEP_MS`) and add the real cost to each account's spend, release the leases, correct the
        token counters (a negative amount comes off the window that holds the hit, nothing once it has
        aged out; a positive one is added to the current window up to the limit).

        Returns the alert levels the spend reached for the first time."""

    async def finish_many(self, exits: Sequence[Exit], now_ms: int, window_ms: int) -> list[Crossed | StoreUnavailable]:
        """`finish` for many calls at once (one round trip on Redis); each result or failure in order."""
        results: list[Crossed | StoreUnavailable] = []
        for exit in exits:
            try:
                results.append(await self.finish(exit, now_ms, window_ms))
            except StoreUnavailable as exc:
                results.append(exc)
        return results

    @abstractmethod
    async def renew(self, exit: Exit, deadline_ms: int) -> bool:
        """Move the leases and hold a running call will give back with `exit` to lapse at `deadline_ms`
        instead (a long stream keeps them). False when none of them was found (they lapsed already)."""

    @abstractmethod
    async def release(self, lease_keys: Sequence[str], members: Sequence[str]) -> None:
        """Drop the leases `members` from each lease set (those a slice of calls no longer needs)."""

    @abstractmethod
    async def cancel(self, accounts: Sequence[Account], member: str, amount: int, until_ms: int) -> None:
        """Undo a reservation whose reply was lost: drop the hold `member` (of `amount`) where it
        landed; where it has not, mark it so that a late copy of it changes nothing (the marker goes
        at `until_ms`, the hold's deadline). Idempotent."""

    @abstractmethod
    async def balance(self, account: Account, now_ms: int) -> tuple[int, int]:
        """(spent, reserved) of an account, after dropping lapsed holds."""

    @abstractmethod
    async def seed(self, account: Account, spent: int, now_ms: int) -> bool:
        """Create a missing account with `spent` (what the ledger knows it spent in its window), marked
        as rebuilt at `now_ms`; where it exists already (another replica was first), change nothing.
        True if it created it."""

    @abstractmethod
    async def exists(self, account: Account) -> bool:
        """Whether the account's state exists (False: never used, expired, or lost with the store)."""

    @abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers (readiness)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close connections."""

    # -- the parts alone ---------------------------------------------------------------------------

    async def reserve(
        self, accounts: Sequence[Account], member: str, amount: int, now_ms: int, deadline_ms: int
    ) -> Reserved | Shortfall:
        """Hold `amount` on every account if each has `spent + reserved + amount <= cap`, else change nothing
        (`admit` with accounts only)."""
        verdict = await self.admit(Entry(accounts=accounts, amount=amount, hold_member=member), now_ms, 1, deadline_ms)
        return verdict.short if verdict.short is not None else Reserved(verdict.used)

    async def settle(self, accounts: Sequence[Account], member: str, held: int, actual: int) -> Crossed:
        """Consume the hold `member` (of `held`) and add `actual` to each account's spend (`finish` with
        accounts only); where the hold is gone (settled already) nothing changes."""
        return await self.finish(Exit(accounts=accounts, hold_member=member, held=held, actual=actual), 0, 1)

    async def hit(
        self,
        counters: Sequence[Counter],
        leases: Sequence[Lease],
        member: str,
        now_ms: int,
        window_ms: int,
        lease_deadline_ms: int,
    ) -> Hit:
        """Count and lease without a budget (`admit` with counters and lease sets only)."""
        verdict = await self.admit(
            Entry(requests=counters, leases=leases, lease_member=member), now_ms, window_ms, lease_deadline_ms
        )
        return Hit(verdict.counts, verdict.refused, verdict.full)

    async def adjust(
        self,
        counters: Sequence[Counter],
        lease_keys: Sequence[str],
        member: str,
        now_ms: int,
        window_ms: int,
        hit_window: int,
    ) -> None:
        """Correct counters of a hit made in window number `hit_window` and release lease `member`
        (`finish` without a budget)."""
        exit = Exit(corrections=counters, lease_keys=lease_keys, lease_member=member, hit_window=hit_window)
        await self.finish(exit, now_ms, window_ms)
