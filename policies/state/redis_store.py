"""The Redis store: one Lua script per operation, so each is atomic and one round trip.

Errors: any client error becomes StoreUnavailable. After a connection failure the store fails fast
(no network at all) for `fail_fast` seconds, so an unreachable Redis costs requests nothing but the
decision; then the next call tries again, and redis-py reconnects by itself. Redis forgets loaded
scripts when it restarts: redis-py's script objects answer NOSCRIPT by loading the script again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from policies.state import scripts
from policies.state.base import Account, Counter, Hit, Lease, Reserved, Shortfall, StateStore
from policies.state.errors import StoreUnavailable
from policies.state.urls import StoreLocation, redis_client

log = logging.getLogger("agentgw.state")

_STORE_ERRORS = (RedisError, RedisClusterException, OSError)
_CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class _RedisGuard:
    """`with guard: await ...` fails fast while the store is known to be down, and turns client
    errors into StoreUnavailable."""

    __slots__ = ("_store",)

    def __init__(self, store: RedisStore) -> None:
        self._store = store

    def __enter__(self) -> None:
        store = self._store
        if store._down_until and time.monotonic() < store._down_until:
            raise StoreUnavailable(f"state store {store.location.redacted} is unreachable (failing fast)")

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        store = self._store
        if error is None:
            if store._down_until:
                store._down_until = 0.0
                log.warning("state store %s is reachable again", store.location.redacted)
            return
        if not isinstance(error, _STORE_ERRORS):
            return
        if isinstance(error, _CONNECTION_ERRORS) or isinstance(error.__cause__, _CONNECTION_ERRORS):
            if not store._down_until:
                log.warning("state store %s is unreachable: %s", store.location.redacted, _describe(error))
            store._down_until = time.monotonic() + store.fail_fast
        raise StoreUnavailable(
            f"state store {store.location.redacted}: {_describe(error)}", maybe_applied=True
        ) from error


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


class RedisStore(StateStore):
    """Budgets, leases and rate-limit windows in Redis (plain, cluster or sentinel)."""

    kind = "redis"
    parallel = True

    def __init__(
        self,
        location: StoreLocation,
        *,
        key_prefix: str = "agentgw:",
        connect_timeout: float = 0.25,
        timeout: float = 0.5,
        max_connections: int = 256,
        fail_fast: float = 1.0,
    ) -> None:
        self.location = location
        self.fail_fast = fail_fast
        self._prefix = key_prefix
        self._down_until = 0.0
        self._guard = _RedisGuard(self)
        self._client: Any = redis_client(
            location, connect_timeout=connect_timeout, timeout=timeout, max_connections=max_connections
        )
        register = self._client.register_script
        self._reserve = register(scripts.RESERVE)
        self._settle = register(scripts.SETTLE)
        self._cancel = register(scripts.CANCEL)
        self._balance = register(scripts.BALANCE)
        self._hit = register(scripts.HIT)
        self._adjust = register(scripts.ADJUST)

    @property
    def client(self) -> Any:
        """The redis.asyncio client (tests and diagnostics)."""
        return self._client

    def _keys(self, accounts: Sequence[Account]) -> list[str]:
        keys: list[str] = []
        for account in accounts:
            key = self._prefix + account.key
            keys += (key, key + ":h")
        return keys

    async def reserve(
        self, accounts: Sequence[Account], member: str, amount: int, now_ms: int, deadline_ms: int
    ) -> Reserved | Shortfall:
        args: list[Any] = [now_ms, deadline_ms, member, amount]
        for account in accounts:
            args += (account.cap, account.expire_at)
        with self._guard:
            result = await self._reserve(self._keys(accounts), args)
        if int(result[0]) == 0:
            return Reserved(tuple(int(value) for value in result[1:]))
        if int(result[0]) < 0:  # cancelled before it landed (only a late copy of a lost command sees this)
            raise StoreUnavailable(f"reservation {member} was cancelled")
        index, spent, reserved = result
        return Shortfall(int(index) - 1, int(spent), int(reserved))

    async def settle(
        self, accounts: Sequence[Account], member: str, held: int, actual: int
    ) -> list[tuple[int, str, int]]:
        args: list[Any] = [member, held, actual]
        for account in accounts:
            args += (account.expire_at, len(account.alerts))
            for label, level in account.alerts:
                args += (label, level)
        with self._guard:
            result = await self._settle(self._keys(accounts), args)
        return [(int(result[i]) - 1, result[i + 1].decode(), int(result[i + 2])) for i in range(0, len(result), 3)]

    async def cancel(self, accounts: Sequence[Account], member: str, amount: int, until_ms: int) -> None:
        with self._guard:
            await self._cancel(self._keys(accounts), [member, amount, until_ms])

    async def balance(self, account: Account, now_ms: int) -> tuple[int, int]:
        with self._guard:
            spent, reserved = await self._balance(self._keys((account,)), [now_ms])
        return int(spent), int(reserved)

    async def hit(
        self,
        counters: Sequence[Counter],
        leases: Sequence[Lease],
        member: str,
        now_ms: int,
        window_ms: int,
        lease_deadline_ms: int,
    ) -> Hit:
        prefix = self._prefix
        lease_expire_at = lease_deadline_ms + (lease_deadline_ms - now_ms)  # outlive any live lease, and skew
        keys = [prefix + c.key for c in counters] + [prefix + lease.key for lease in leases]
        args: list[Any] = [now_ms, window_ms, len(counters), member, lease_deadline_ms, lease_expire_at]
        for counter in counters:
            args += (counter.limit, counter.amount)
        args += [lease.limit for lease in leases]
        with self._guard:
            result = await self._hit(keys, args)
        status, which = int(result[0]), int(result[1]) - 1
        counts = tuple((int(result[i]), int(result[i + 1])) for i in range(2, len(result), 2))
        if status == 1:
            return Hit(counts, refused=which)
        if status == 2:
            return Hit(counts, full=which)
        return Hit(counts)

    async def adjust(
        self,
        counters: Sequence[Counter],
        lease_keys: Sequence[str],
        member: str,
        now_ms: int,
        window_ms: int,
        hit_window: int,
    ) -> None:
        prefix = self._prefix
        keys = [prefix + c.key for c in counters] + [prefix + key for key in lease_keys]
        args: list[Any] = [now_ms, window_ms, len(counters), member, hit_window]
        for counter in counters:
            args += (counter.limit, counter.amount)
        with self._guard:
            await self._adjust(keys, args)

    async def ping(self) -> None:
        with self._guard:
            await self._client.ping()

    async def aclose(self) -> None:
        with contextlib.suppress(*_STORE_ERRORS):  # closing a dead connection is not worth an error
            await self._client.aclose()
